//! Manual probe: `probe BUS_SOCKET UID RESOURCE` times CheckGrant and a
//! RegisterSession/UnregisterSession pair, 200 times each.
use pam_jit::client::Client;
use pam_jit::wire::Value;
use std::time::{Duration, Instant};

fn time(label: &str, mut f: impl FnMut()) {
    let mut v: Vec<u128> = (0..200)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_micros()
        })
        .collect();
    v.sort();
    println!(
        "{label}: p50 {}us p90 {}us max {}us",
        v[100], v[180], v[199]
    );
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (bus, uid, res) = (&a[1], a[2].parse::<u32>().unwrap(), a[3].clone());
    let call = |m: &str, args: &[Value]| {
        Client::connect(bus, Duration::from_secs(2)).and_then(|mut c| c.call_jitd(m, args))
    };
    time("CheckGrant", || {
        call("CheckGrant", &[Value::U32(uid), Value::Str(res.clone())]).unwrap();
    });
    time("Register+Unregister", || {
        let r = call(
            "RegisterSession",
            &[
                Value::U32(uid),
                Value::Str(res.clone()),
                Value::Str("probe".into()),
                Value::Str("".into()),
                Value::Str("".into()),
            ],
        )
        .unwrap();
        call("UnregisterSession", &[r[0].clone()]).unwrap();
    });
}
