//! Manual probe: `probe BUS_SOCKET UID RESOURCE` prints CheckGrant's reply.
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let t = std::time::Instant::now();
    let r = pam_jit::client::Client::connect(&a[1], std::time::Duration::from_secs(2)).and_then(
        |mut c| {
            c.call_jitd(
                "CheckGrant",
                &[
                    pam_jit::wire::Value::U32(a[2].parse().unwrap()),
                    pam_jit::wire::Value::Str(a[3].clone()),
                ],
            )
        },
    );
    println!("{r:?} in {:?}", t.elapsed());
}
