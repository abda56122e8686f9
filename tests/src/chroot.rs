//! Debian 12 chroots for the package tests: a minimal bookworm tree, made by
//! mmdebstrap from the mirrors the host's apt uses and cached as a tarball in
//! `/var/cache/jit-tests`, unpacked into a temporary directory. It is used
//! through a private mount namespace holding its `/proc`, `/dev`, `/run`,
//! `/tmp`, the host's cgroup2 tree (for jitd's session cgroups, in a
//! directory of the test's own) and the package directory, read-only at
//! `/mnt/packages`. Nothing of the host's is written but that cache and the
//! test's cgroup, removed on drop.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::{
    bin_dir, cgroup2_mount, die_with_parent, kill_and_reap, remove_cgroup_tree, Background, Run,
};

/// What the tests need in the chroot beyond `minbase` (which has dpkg,
/// libpam-runtime, passwd and util-linux): the gated sudo, the system bus,
/// what the package's maintainer scripts run without systemd, and the
/// policy jit-selinux's module is linked into.
const INCLUDE: &str =
    "sudo,dbus,systemd-standalone-sysusers,systemd-standalone-tmpfiles,selinux-policy-default";

const CACHE_DIR: &str = "/var/cache/jit-tests";

/// Where `scripts/package.sh` put the packages: `$JIT_PACKAGE_DIR`, else
/// `<target>/packages` (scripts/test.sh builds them there).
pub fn packages_dir() -> PathBuf {
    std::env::var_os("JIT_PACKAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().parent().expect("target dir").join("packages"))
}

/// The one file in [`packages_dir`] whose name starts with `prefix` and ends
/// with `suffix`.
#[track_caller]
pub fn package_file(prefix: &str, suffix: &str) -> PathBuf {
    let dir = packages_dir();
    let found: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run `scripts/package.sh --profile dev {}` first (scripts/test.sh does)",
                dir.display(),
                dir.display()
            )
        })
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {prefix}*{suffix} in {}: {found:?}",
        dir.display()
    );
    found.into_iter().next().unwrap_or_default()
}

/// `deb URI SUITE COMPONENTS` for every bookworm suite in the host's apt
/// sources (one-line and deb822 files), so the chroot comes from the same
/// mirrors as the host's packages.
fn debian_sources() -> Vec<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    let mut parts: Vec<PathBuf> = fs::read_dir("/etc/apt/sources.list.d")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    parts.sort();
    files.extend(parts);
    let bookworm = |suite: &str| suite == "bookworm" || suite.starts_with("bookworm-");
    let mut out = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        if file.extension().is_some_and(|e| e == "sources") {
            for stanza in text.split("\n\n") {
                let field = |name: &str| {
                    stanza.lines().find_map(|l| {
                        l.strip_prefix(name)
                            .and_then(|r| r.strip_prefix(':'))
                            .map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                    })
                };
                let (Some(types), Some(uris), Some(suites), Some(components)) = (
                    field("Types"),
                    field("URIs"),
                    field("Suites"),
                    field("Components"),
                ) else {
                    continue;
                };
                if !types.iter().any(|t| t == "deb") {
                    continue;
                }
                for uri in &uris {
                    for suite in suites.iter().filter(|s| bookworm(s)) {
                        out.push(format!("deb {uri} {suite} {}", components.join(" ")));
                    }
                }
            }
        } else {
            for line in text.lines() {
                // Options ("[signed-by=... arch=...]") are not part of the entry.
                let line = match (line.find('['), line.find(']')) {
                    (Some(a), Some(b)) if a < b => format!("{}{}", &line[..a], &line[b + 1..]),
                    _ => line.to_owned(),
                };
                let words: Vec<&str> = line.split_whitespace().collect();
                if let ["deb", uri, suite, components @ ..] = words.as_slice() {
                    if bookworm(suite) && !components.is_empty() {
                        out.push(format!("deb {uri} {suite} {}", components.join(" ")));
                    }
                }
            }
        }
    }
    assert!(
        !out.is_empty(),
        "no bookworm entries in the host's apt sources"
    );
    out
}

/// The cached minbase tarball, made on first use (a minute or two; later
/// runs reuse it). Its name covers the package list and the sources.
fn base_tarball() -> PathBuf {
    static BASE: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut base = BASE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = &*base {
        return path.clone();
    }
    let sources = debian_sources();
    let mut hasher = DefaultHasher::new();
    (INCLUDE, &sources).hash(&mut hasher);
    let path = Path::new(CACHE_DIR).join(format!("bookworm-minbase-{:016x}.tar", hasher.finish()));
    if !path.is_file() {
        fs::create_dir_all(CACHE_DIR).expect("cache dir");
        // Written aside and renamed, so a concurrent or interrupted run never
        // sees half a tarball.
        let partial = path.with_extension(format!("tar.{}", std::process::id()));
        let mut cmd = Command::new("mmdebstrap");
        cmd.args(["--quiet", "--variant=minbase", "--format=tar"])
            .arg("--aptopt=Acquire::Retries \"3\"")
            .arg(format!("--include={INCLUDE}"))
            .arg("bookworm")
            .arg(&partial)
            .args(&sources);
        Background::spawn(cmd).finish(Duration::from_secs(600)).ok();
        fs::rename(&partial, &path).expect("rename the base tarball");
        // Tarballs for other package lists are stale now.
        for entry in fs::read_dir(CACHE_DIR).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("bookworm-minbase-")
                && name.ends_with(".tar")
                && entry.path() != path
            {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    *base = Some(path.clone());
    path
}

/// One unpacked chroot and the mount namespace that uses it. Dropping it
/// ends the namespace, removes the tree and the test's cgroup.
pub struct Chroot {
    pub root: PathBuf,
    /// This chroot's cgroup for jitd's sessions, as seen inside the chroot.
    pub cgroup: Option<String>,
    host_cgroup: Option<PathBuf>,
    holder: Child,
    /// Last, so the tree goes after the namespace.
    _dir: tempfile::TempDir,
}

impl Chroot {
    pub fn new() -> Chroot {
        let tarball = base_tarball();
        let dir = tempfile::Builder::new()
            .prefix("jit-chroot-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("root");
        fs::create_dir(&root).expect("root dir");
        let mut tar = Command::new("tar");
        tar.arg("-xf").arg(&tarball).arg("-C").arg(&root);
        Background::spawn(tar).finish(Duration::from_secs(120)).ok();
        for d in ["sys/fs/cgroup", "mnt/packages"] {
            fs::create_dir_all(root.join(d)).expect("mount point");
        }

        let cgroup2 = cgroup2_mount();
        let name = dir
            .path()
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let mut holder_cmd = Command::new("unshare");
        holder_cmd
            .args(["--mount", "--propagation", "private", "--", "sh", "-euc"])
            .arg(
                "r=$1
                 mount -t proc proc \"$r/proc\"
                 mount --rbind /dev \"$r/dev\"
                 mount -t tmpfs -o mode=0755 run \"$r/run\"
                 mount -t tmpfs -o mode=1777 tmp \"$r/tmp\"
                 mount --bind \"$2\" \"$r/mnt/packages\"
                 mount -o remount,bind,ro \"$r/mnt/packages\"
                 [ -z \"$3\" ] || mount --bind \"$3\" \"$r/sys/fs/cgroup\"
                 echo ready
                 exec sleep infinity",
            )
            .arg("sh")
            .arg(&root)
            .arg(packages_dir())
            .arg(cgroup2.as_deref().unwrap_or(Path::new("")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut holder_cmd);
        let mut holder = holder_cmd.spawn().expect("unshare");
        let mut line = String::new();
        let _ = BufReader::new(holder.stdout.take().expect("stdout")).read_line(&mut line);
        if line.trim() != "ready" {
            kill_and_reap(&mut holder);
            let mut err = String::new();
            let _ = holder.stderr.take().map(|mut s| s.read_to_string(&mut err));
            panic!("chroot mounts failed: {err}");
        }
        // Made here, as systemd makes a Delegate=yes unit's cgroup: jitd,
        // holding only its unit's capabilities, creates the session cgroups
        // inside it but could not create it in a read-only cgroup root.
        let host_cgroup = cgroup2.map(|m| m.join(&name));
        if let Some(dir) = &host_cgroup {
            fs::create_dir(dir).expect("the chroot's cgroup");
        }
        let cgroup = host_cgroup
            .as_ref()
            .map(|_| format!("/sys/fs/cgroup/{name}"));
        Chroot {
            host_cgroup,
            cgroup,
            root,
            holder,
            _dir: dir,
        }
    }

    /// The host path of `path` inside the chroot.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// `program args` inside the chroot, as root, with a clean environment.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["-m", "--", "chroot"])
            .arg(&self.root)
            .args([
                "env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "LC_ALL=C",
                "DEBIAN_FRONTEND=noninteractive",
                program,
            ])
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null());
        die_with_parent(&mut cmd);
        cmd
    }

    /// Runs a shell script inside the chroot (2 minutes at most).
    pub fn sh(&self, script: &str) -> Run {
        let mut run = Background::spawn(self.command("sh", &["-euc", script]))
            .finish(Duration::from_secs(120));
        run.cmd = format!("[chroot] {script}");
        run
    }

    /// [`Chroot::sh`], asserting success.
    #[track_caller]
    pub fn sh_ok(&self, script: &str) -> Run {
        self.sh(script).ok()
    }

    /// `stat -c '%a %U %G'` of a path inside the chroot.
    #[track_caller]
    pub fn mode_owner_group(&self, path: &str) -> String {
        self.sh_ok(&format!("stat -c '%a %U %G' {path}"))
            .stdout
            .trim()
            .to_owned()
    }
}

impl Default for Chroot {
    fn default() -> Self {
        Chroot::new()
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        kill_and_reap(&mut self.holder);
        if let Some(dir) = &self.host_cgroup {
            remove_cgroup_tree(dir);
        }
    }
}
