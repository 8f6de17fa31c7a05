//! Running as a Windows service: the service control manager's start, stop and shutdown.
//!
//! `ward-agent run` started by the service control manager (the installer's `WardAgent` service)
//! connects to it here and stops cleanly when told to; started from a console it runs as usual. A
//! service lives in session 0, which has no user desktop, so the service spools and ships only; the
//! keyboard hook runs in each user's session as `ward-agent run --session-only`.
//!
//! A service has no console, so its log goes to `ward-agent.log` in the default state folder
//! (`C:\ProgramData\Ward\agent`), set aside as `ward-agent.log.old` at start once past 5 MB. Under
//! Wine a service's standard error is a console that only drains when another Wine program runs,
//! which stalled the service at its first log line; the file avoids that too.

use std::os::windows::io::AsRawHandle;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;
use windows::core::{w, PWSTR};
use windows::Win32::Foundation::HANDLE as Win32Handle;
use windows::Win32::System::Console::{SetStdHandle, STD_ERROR_HANDLE};
use windows::Win32::System::Services::{
    RegisterServiceCtrlHandlerExW, SetServiceStatus, StartServiceCtrlDispatcherW,
    SERVICE_ACCEPT_SHUTDOWN, SERVICE_ACCEPT_STOP, SERVICE_CONTROL_INTERROGATE,
    SERVICE_CONTROL_SHUTDOWN, SERVICE_CONTROL_STOP, SERVICE_RUNNING, SERVICE_STATUS,
    SERVICE_STATUS_CURRENT_STATE, SERVICE_STATUS_HANDLE, SERVICE_STOPPED, SERVICE_STOP_PENDING,
    SERVICE_TABLE_ENTRYW, SERVICE_WIN32_OWN_PROCESS,
};

/// The service's work: runs until the token is cancelled.
type Work = Box<dyn FnOnce(CancellationToken) -> anyhow::Result<()> + Send>;

/// What the service entry point needs; it has no context argument.
static WORK: Mutex<Option<Work>> = Mutex::new(None);
static RESULT: Mutex<Option<anyhow::Result<()>>> = Mutex::new(None);
static STOP: Mutex<Option<CancellationToken>> = Mutex::new(None);
static HANDLE: Mutex<Option<usize>> = Mutex::new(None);

/// The service's log file, in the default state folder.
pub const LOG_FILE: &str = "ward-agent.log";
/// Past this size the log is set aside at the next start.
const LOG_ROTATE_BYTES: u64 = 5 * 1024 * 1024;

/// Points standard error, where the log goes, at the service's log file.
fn log_to_file() {
    let dir = crate::config::default_state_dir();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(LOG_FILE);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let _ = std::fs::rename(&path, dir.join(format!("{LOG_FILE}.old")));
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    // SAFETY: the handle stays open for the life of the process (the file is never closed).
    if unsafe { SetStdHandle(STD_ERROR_HANDLE, Win32Handle(file.as_raw_handle())) }.is_ok() {
        std::mem::forget(file);
    }
}

/// The Win32 error for "not started by the service control manager".
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;

/// Runs `work` as the service if the service control manager started this process; `None` when
/// started from a console (the caller then runs normally).
pub fn try_dispatch(
    work: impl FnOnce(CancellationToken) -> anyhow::Result<()> + Send + 'static,
) -> Option<anyhow::Result<()>> {
    *WORK.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(work));
    let mut name: Vec<u16> = "WardAgent\0".encode_utf16().collect();
    let table = [
        SERVICE_TABLE_ENTRYW {
            lpServiceName: PWSTR(name.as_mut_ptr()),
            lpServiceProc: Some(service_main),
        },
        SERVICE_TABLE_ENTRYW::default(),
    ];
    // SAFETY: the table and the name outlive the call, which returns when the service stops.
    match unsafe { StartServiceCtrlDispatcherW(table.as_ptr()) } {
        Ok(()) => Some(
            RESULT
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or(Ok(())),
        ),
        Err(e) if e.code().0 & 0xffff == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT => None,
        Err(e) => Some(Err(anyhow::anyhow!("service control manager: {e}"))),
    }
}

fn report(state: SERVICE_STATUS_CURRENT_STATE, exit_code: u32) {
    let Some(handle) = *HANDLE.lock().unwrap_or_else(|p| p.into_inner()) else {
        return;
    };
    let accepted = if state == SERVICE_RUNNING {
        SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN
    } else {
        0
    };
    let status = SERVICE_STATUS {
        dwServiceType: SERVICE_WIN32_OWN_PROCESS,
        dwCurrentState: state,
        dwControlsAccepted: accepted,
        dwWin32ExitCode: exit_code,
        dwWaitHint: 15_000,
        ..Default::default()
    };
    // SAFETY: the handle came from RegisterServiceCtrlHandlerExW and lives as long as the service.
    let _ = unsafe { SetServiceStatus(SERVICE_STATUS_HANDLE(handle as *mut _), &status) };
}

unsafe extern "system" fn control_handler(
    control: u32,
    _event_type: u32,
    _event_data: *mut core::ffi::c_void,
    _context: *mut core::ffi::c_void,
) -> u32 {
    match control {
        SERVICE_CONTROL_STOP | SERVICE_CONTROL_SHUTDOWN => {
            report(SERVICE_STOP_PENDING, 0);
            if let Some(token) = STOP.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                token.cancel();
            }
            0
        }
        SERVICE_CONTROL_INTERROGATE => 0,
        // ERROR_CALL_NOT_IMPLEMENTED
        _ => 120,
    }
}

unsafe extern "system" fn service_main(_argc: u32, _argv: *mut PWSTR) {
    log_to_file();
    // SAFETY: registering our handler for our own service name.
    let handle = match unsafe {
        RegisterServiceCtrlHandlerExW(w!("WardAgent"), Some(control_handler), None)
    } {
        Ok(h) => h,
        Err(e) => {
            *RESULT.lock().unwrap_or_else(|p| p.into_inner()) = Some(Err(anyhow::anyhow!(
                "cannot register with the service control manager: {e}"
            )));
            return;
        }
    };
    *HANDLE.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle.0 as usize);
    let token = CancellationToken::new();
    *STOP.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
    report(SERVICE_RUNNING, 0);
    let work = WORK.lock().unwrap_or_else(|p| p.into_inner()).take();
    let result = work.map_or(Ok(()), |w| w(token));
    let exit = u32::from(result.is_err());
    *RESULT.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
    report(SERVICE_STOPPED, exit);
}
