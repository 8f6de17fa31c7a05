/* ProcessPrng for Wine releases that lack bcryptprimitives.dll (Wine 8 in Debian 12).
 * Rust's standard library on Windows draws its randomness from ProcessPrng; on Windows 10 and
 * later the real DLL is always present and this file is not used. Test runs under Wine only. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom, advapi32 */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
