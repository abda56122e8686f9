//! Runs N account checks through libpam in one process (threat T10):
//! `pam-loop SERVICE USER N`. Prints thread and descriptor counts before and
//! after, the results and per-call latencies (microseconds), one `key=value`
//! line.

use std::ffi::{c_char, c_int, c_void, CString};
use std::time::Instant;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

#[repr(C)]
struct PamConv {
    conv: extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_acct_mgmt(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
}

/// Accepts every message; answers with empty responses (libpam's callers free them).
extern "C" fn conversation(
    num_msg: c_int,
    _msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    _appdata: *mut c_void,
) -> c_int {
    if num_msg <= 0 || resp.is_null() {
        return 19; // PAM_CONV_ERR
    }
    // SAFETY: calloc of num_msg zeroed responses, handed to libpam.
    unsafe {
        let r =
            libc::calloc(num_msg as usize, std::mem::size_of::<PamResponse>()) as *mut PamResponse;
        if r.is_null() {
            return 5; // PAM_BUF_ERR
        }
        *resp = r;
    }
    0
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: pam-loop SERVICE USER N");
        std::process::exit(2);
    }
    let service = CString::new(args[1].as_str()).expect("service");
    let user = CString::new(args[2].as_str()).expect("user");
    let n: usize = args[3].parse().expect("N");
    let conv = PamConv {
        conv: conversation,
        appdata_ptr: std::ptr::null_mut(),
    };
    let (threads_before, fds_before) = (count("/proc/self/task"), count("/proc/self/fd"));
    let mut latencies = Vec::with_capacity(n);
    let (mut ok, mut denied, mut other) = (0, 0, 0);
    for _ in 0..n {
        let started = Instant::now();
        let mut pamh: *mut c_void = std::ptr::null_mut();
        // SAFETY: valid C strings and conversation; pamh is ended below.
        let rc = unsafe { pam_start(service.as_ptr(), user.as_ptr(), &conv, &mut pamh) };
        assert_eq!(rc, 0, "pam_start failed: {rc}");
        // SAFETY: pamh from pam_start.
        let rc = unsafe { pam_acct_mgmt(pamh, 0) };
        // SAFETY: as above; not used afterwards.
        unsafe { pam_end(pamh, rc) };
        latencies.push(started.elapsed().as_micros() as u64);
        match rc {
            0 => ok += 1,
            6 | 10 | 9 => denied += 1, // PERM_DENIED, USER_UNKNOWN, AUTHINFO_UNAVAIL
            _ => other += 1,
        }
    }
    let (threads_after, fds_after) = (count("/proc/self/task"), count("/proc/self/fd"));
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "threads_before={threads_before} threads_after={threads_after} fds_before={fds_before} \
         fds_after={fds_after} ok={ok} denied={denied} other={other} p50_us={} p99_us={} max_us={}",
        pct(0.5),
        pct(0.99),
        latencies.last().copied().unwrap_or(0)
    );
}
