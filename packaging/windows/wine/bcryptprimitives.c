/* ProcessPrng for Wine 8 (Debian 12), which lacks bcryptprimitives.dll; Rust's standard library
 * takes its random numbers from it on Windows 10 and later. Used only to run ward-agent.exe under
 * Wine (agent/windows/test, packaging/windows/check-under-wine); real Windows has the DLL. */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
