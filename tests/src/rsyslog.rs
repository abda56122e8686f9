//! Debian's rsyslog, started by a test on 127.0.0.1: RELP (imrelp), TCP
//! (imptcp) and TLS (imtcp with gtls, a certificate made by openssl for
//! the test), each written as received to a file of its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::sinks::free_port;
use crate::{die_with_parent, kill_and_reap, wait_for};

/// The receivers, by the file each writes.
pub const RECEIVERS: [&str; 3] = ["relp", "tcp", "tls"];

pub struct Rsyslog {
    dir: PathBuf,
    child: Option<Child>,
    pub relp: u16,
    pub tcp: u16,
    pub tls: u16,
}

impl Rsyslog {
    /// Writes the config and a certificate for `siem.test` under `dir`,
    /// and starts rsyslogd.
    pub fn start(dir: &Path) -> Rsyslog {
        fs::create_dir_all(dir.join("work")).expect("rsyslog dir");
        make_certificates(dir);
        let mut rsyslog = Rsyslog {
            dir: dir.to_owned(),
            child: None,
            relp: free_port(),
            tcp: free_port(),
            tls: free_port(),
        };
        let d = dir.display();
        let rulesets: String = RECEIVERS
            .iter()
            .map(|r| {
                format!("ruleset(name=\"{r}\") {{ action(type=\"omfile\" file=\"{d}/{r}.log\" template=\"raw\") }}\n")
            })
            .collect();
        let config = format!(
            r#"global(workDirectory="{d}/work" maxMessageSize="256k"
       defaultNetstreamDriverCAFile="{d}/ca.pem"
       defaultNetstreamDriverCertFile="{d}/cert.pem"
       defaultNetstreamDriverKeyFile="{d}/key.pem")
module(load="imrelp")
module(load="imptcp")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
template(name="raw" type="string" string="%rawmsg%\n")
{rulesets}
input(type="imrelp" address="127.0.0.1" port="{relp}" ruleset="relp")
input(type="imptcp" address="127.0.0.1" port="{tcp}" ruleset="tcp")
input(type="imtcp" address="127.0.0.1" port="{tls}" ruleset="tls")
"#,
            relp = rsyslog.relp,
            tcp = rsyslog.tcp,
            tls = rsyslog.tls,
        );
        fs::write(dir.join("rsyslog.conf"), config).expect("rsyslog.conf");
        rsyslog.run();
        rsyslog
    }

    /// The CA file for the TLS sink.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn run(&mut self) {
        assert!(self.child.is_none(), "rsyslogd already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("rsyslogd.log"))
            .expect("rsyslogd.log");
        let mut cmd = Command::new("rsyslogd");
        cmd.args(["-n", "-f"])
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        die_with_parent(&mut cmd);
        self.child = Some(cmd.spawn().expect("spawn rsyslogd"));
        let ports = [self.relp, self.tcp, self.tls];
        let listening = wait_for(Duration::from_secs(10), || {
            ports
                .iter()
                .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
                .then_some(())
        });
        assert!(
            listening.is_some(),
            "rsyslogd is not listening: {}",
            fs::read_to_string(self.dir.join("rsyslogd.log")).unwrap_or_default()
        );
    }

    /// Stops it as a service stop does (SIGTERM: it closes its sessions).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid, not yet reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            if wait_for(Duration::from_secs(10), || child.try_wait().ok().flatten()).is_none() {
                kill_and_reap(&mut child);
            }
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// Every line `receiver` wrote so far.
    pub fn received(&self, receiver: &str) -> Vec<String> {
        fs::read_to_string(self.dir.join(format!("{receiver}.log")))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a certificate for `siem.test` it signed (a CA's own
/// certificate is not accepted as a server's).
fn make_certificates(dir: &Path) {
    let key = ["-newkey", "rsa:2048", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &key,
            &[
                "-days",
                "2",
                "-subj",
                "/CN=jit test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"][..],
            &key,
            &[
                "-subj",
                "/CN=siem.test",
                "-keyout",
                "key.pem",
                "-out",
                "cert.csr",
            ],
        ]
        .concat(),
    );
    fs::write(
        dir.join("cert.ext"),
        "subjectAltName=DNS:siem.test\nbasicConstraints=CA:FALSE\n",
    )
    .expect("cert.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "cert.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "cert.ext",
            "-out",
            "cert.pem",
        ],
    );
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_and_reap(child);
        }
    }
}

/// One record a sink received: `event` or `anchor`, the id it names, its MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub kind: String,
    pub id: u64,
    pub mac: String,
    pub json: serde_json::Value,
}

/// The jit records in `lines` (JSON lines, or syslog lines whose MSG is
/// the record's JSON), in the order received.
pub fn jit_records(lines: &[String]) -> Vec<Received> {
    lines
        .iter()
        .filter_map(|line| {
            let json: serde_json::Value = line
                .match_indices('{')
                .find_map(|(at, _)| serde_json::from_str(&line[at..]).ok())?;
            let kind = json["type"].as_str()?.to_owned();
            let id = match kind.as_str() {
                "anchor" => json["last_id"].as_u64()?,
                _ => json["id"].as_u64()?,
            };
            let mac = json["mac"].as_str()?.to_owned();
            Some(Received {
                kind,
                id,
                mac,
                json,
            })
        })
        .collect()
}
