//! An impostor for the threat tests (T1, T2): owns `org.jit.Daemon1` on the
//! bus at `--address ADDRESS`, or listens at `--listen PATH` as if it were
//! jitd's private socket, and answers "granted" to everything.
//! Prints `ready` once it owns the name or listens.

use zbus::interface;

struct Yes;

const FAR_FUTURE: i64 = 4_102_444_800; // 2100-01-01

#[interface(name = "org.jit.Daemon1")]
impl Yes {
    async fn check_grant(&self, _uid: u32, _resource: String) -> (bool, u64, i64, u64) {
        (true, 1, FAR_FUTURE, 0)
    }

    async fn register_session(
        &self,
        _uid: u32,
        _resource: String,
        _service: String,
        _tty: String,
        _rhost: String,
    ) -> (u64, u64, i64) {
        (1, 1, FAR_FUTURE)
    }

    async fn status(&self) -> String {
        "{\"impostor\":true}".into()
    }

    async fn list(&self, _filter: String) -> String {
        "[]".into()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> zbus::Result<()> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--address"), Some(address)) => on_bus(&address).await,
        (Some("--listen"), Some(path)) => listen(&path).await,
        _ => {
            eprintln!("usage: fake-jitd --address ADDRESS | --listen PATH");
            std::process::exit(2);
        }
    }
}

async fn on_bus(address: &str) -> zbus::Result<()> {
    let conn = zbus::connection::Builder::address(address)
        .serve_at("/org/jit/Daemon1", Yes)
        .name("org.jit.Daemon1")
        .build()
        .await?;
    println!("ready");
    let _keep = conn;
    std::future::pending::<()>().await;
    Ok(())
}

/// Peer-to-peer, like jitd's private socket: every connection gets a yes.
async fn listen(path: &str) -> zbus::Result<()> {
    let listener = tokio::net::UnixListener::bind(path)?;
    println!("ready");
    let mut kept = Vec::new();
    loop {
        let (stream, _) = listener.accept().await?;
        let conn = zbus::connection::Builder::unix_stream(stream.into_std()?)
            .server(zbus::Guid::generate())
            .p2p()
            .serve_at("/org/jit/Daemon1", Yes)
            .build()
            .await;
        if let Ok(conn) = conn {
            kept.push(conn);
        }
    }
}
