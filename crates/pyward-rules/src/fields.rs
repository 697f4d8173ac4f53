//! Falco fields: names, types and how each is extracted from an [`Event`].

use std::borrow::Cow;
use std::net::IpAddr;

use crate::event::{ContainerAttr, Event, FdAttr, ProcAttr, UserAttr, Value};

/// Type of a field's value, deciding how comparisons are made.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FieldType {
    Str,
    Int,
    Uint,
    Bool,
    Ip,
    /// IP network field (`fd.net`): compared against CIDRs.
    Net,
    Bytes,
    /// Absolute time (ns), prints as time in text output.
    AbsTime,
}

/// How a field is computed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    EvtType,
    EvtDir,
    EvtNum,
    EvtTime,
    EvtTimeS,
    EvtTimeIso,
    EvtDatetime,
    EvtRawtime,
    EvtRes,
    EvtRawres,
    EvtFailed,
    EvtIsOpenRead,
    EvtIsOpenWrite,
    EvtIsOpenExec,
    EvtIsOpenCreate,
    EvtArg(ArgSel),
    EvtRawArg(ArgSel),
    EvtArgs,
    EvtBuffer,
    EvtSource,
    /// Fixed ancestor level.
    Proc(usize, ProcAttr),
    /// Any ancestor (level ≥ 1): `proc.aname` without index in a filter.
    AnyAncestor(ProcAttr),
    ProcDuration,
    ProcExeCtimeDurationProcStart,
    ProcEnv(Option<String>),
    Fd(FdAttr),
    FdTypechar,
    /// Local / remote side (`fd.lip`, `fd.rport`...): true = local.
    FdLocal(bool, NetPart),
    /// Either side (`fd.ip`, `fd.port`, `fd.net`).
    FdEither(NetPart),
    FdServer(NetPart),
    FdClient(NetPart),
    FdIsServer,
    User(UserAttr),
    Container(ContainerAttr),
    ContainerLabel(String),
    K8sPodLabel(String),
    /// `container.mount.dest[glob on source]` / `container.mount.source[glob on dest]` / by index.
    ContainerMount {
        dest: bool,
        key: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum NetPart {
    Ip,
    Port,
    Name,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ArgSel {
    Name(String),
    Index(usize),
}

/// A resolved field.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Field {
    pub kind: Kind,
    pub ty: FieldType,
    /// The field as written (`proc.aname[2]`), for output keys.
    pub text: String,
}

/// Deepest ancestor level walked for "any ancestor" fields.
pub(crate) const MAX_ANCESTORS: usize = 64;

fn simple(name: &str) -> Option<(Kind, FieldType)> {
    use FieldType as T;
    use Kind as K;
    let p = |a| Some((K::Proc(0, a), T::Str));
    let pu = |a| Some((K::Proc(0, a), T::Uint));
    let pb = |a| Some((K::Proc(0, a), T::Bool));
    let par = |a, t| Some((K::Proc(1, a), t));
    let fs = |a| Some((K::Fd(a), T::Str));
    let c = |a| Some((K::Container(a), T::Str));
    match name {
        "evt.type" => Some((K::EvtType, T::Str)),
        "evt.dir" => Some((K::EvtDir, T::Str)),
        "evt.num" => Some((K::EvtNum, T::Uint)),
        "evt.time" => Some((K::EvtTime, T::AbsTime)),
        "evt.time.s" => Some((K::EvtTimeS, T::Str)),
        "evt.time.iso8601" => Some((K::EvtTimeIso, T::Str)),
        "evt.datetime" => Some((K::EvtDatetime, T::Str)),
        "evt.rawtime" => Some((K::EvtRawtime, T::Uint)),
        "evt.res" => Some((K::EvtRes, T::Str)),
        "evt.rawres" => Some((K::EvtRawres, T::Int)),
        "evt.failed" => Some((K::EvtFailed, T::Bool)),
        "evt.is_open_read" => Some((K::EvtIsOpenRead, T::Bool)),
        "evt.is_open_write" => Some((K::EvtIsOpenWrite, T::Bool)),
        "evt.is_open_exec" => Some((K::EvtIsOpenExec, T::Bool)),
        "evt.is_open_create" => Some((K::EvtIsOpenCreate, T::Bool)),
        "evt.args" => Some((K::EvtArgs, T::Str)),
        "evt.buffer" => Some((K::EvtBuffer, T::Bytes)),
        "evt.source" => Some((K::EvtSource, T::Str)),
        "proc.name" => p(ProcAttr::Name),
        "proc.exe" => p(ProcAttr::Exe),
        "proc.exepath" => p(ProcAttr::ExePath),
        "proc.cmdline" => p(ProcAttr::Cmdline),
        "proc.args" => p(ProcAttr::Args),
        "proc.cwd" => p(ProcAttr::Cwd),
        "proc.sname" => p(ProcAttr::SName),
        "proc.tty" => pu(ProcAttr::Tty),
        "proc.pid" => pu(ProcAttr::Pid),
        "proc.ppid" => pu(ProcAttr::Ppid),
        "proc.vpid" => pu(ProcAttr::Vpid),
        "proc.sid" => pu(ProcAttr::Sid),
        "proc.vpgid" => pu(ProcAttr::Vpgid),
        "proc.is_vpgid_leader" => pb(ProcAttr::IsVpgidLeader),
        "proc.is_exe_writable" => pb(ProcAttr::IsExeWritable),
        "proc.is_exe_upper_layer" => pb(ProcAttr::IsExeUpperLayer),
        "proc.is_exe_from_memfd" => pb(ProcAttr::IsExeFromMemfd),
        "proc.exe_ino" => pu(ProcAttr::ExeIno),
        "proc.exe_ino.ctime" => Some((K::Proc(0, ProcAttr::ExeInoCtime), T::AbsTime)),
        "proc.exe_ino.mtime" => Some((K::Proc(0, ProcAttr::ExeInoMtime), T::AbsTime)),
        "proc.exe_ino.ctime_duration_proc_start" => {
            Some((K::ProcExeCtimeDurationProcStart, T::Uint))
        }
        "proc.duration" => Some((K::ProcDuration, T::Uint)),
        "proc.pname" => par(ProcAttr::Name, T::Str),
        "proc.pexe" => par(ProcAttr::Exe, T::Str),
        "proc.pexepath" => par(ProcAttr::ExePath, T::Str),
        "proc.pcmdline" => par(ProcAttr::Cmdline, T::Str),
        "proc.pvpid" => par(ProcAttr::Vpid, T::Uint),
        "thread.tid" => pu(ProcAttr::Tid),
        "thread.cap_permitted" => p(ProcAttr::CapPermitted),
        "thread.cap_effective" => p(ProcAttr::CapEffective),
        "thread.cap_inheritable" => p(ProcAttr::CapInheritable),
        "fd.num" => Some((K::Fd(FdAttr::Num), T::Int)),
        "fd.type" => fs(FdAttr::Type),
        "fd.typechar" => Some((K::FdTypechar, T::Str)),
        "fd.name" => fs(FdAttr::Name),
        "fd.nameraw" => fs(FdAttr::NameRaw),
        "fd.directory" => fs(FdAttr::Directory),
        "fd.filename" => fs(FdAttr::Filename),
        "fd.l4proto" => fs(FdAttr::L4Proto),
        "fd.sockfamily" => fs(FdAttr::SockFamily),
        "fd.ino" => Some((K::Fd(FdAttr::Ino), T::Uint)),
        "fd.dev" => Some((K::Fd(FdAttr::Dev), T::Uint)),
        "fd.connected" => Some((K::Fd(FdAttr::Connected), T::Bool)),
        "fd.name_changed" => Some((K::Fd(FdAttr::NameChanged), T::Bool)),
        "fd.is_server" => Some((K::FdIsServer, T::Bool)),
        "fd.cip" => Some((K::FdClient(NetPart::Ip), T::Ip)),
        "fd.sip" => Some((K::FdServer(NetPart::Ip), T::Ip)),
        "fd.lip" => Some((K::FdLocal(true, NetPart::Ip), T::Ip)),
        "fd.rip" => Some((K::FdLocal(false, NetPart::Ip), T::Ip)),
        "fd.ip" => Some((K::FdEither(NetPart::Ip), T::Ip)),
        "fd.cnet" => Some((K::FdClient(NetPart::Ip), T::Net)),
        "fd.snet" => Some((K::FdServer(NetPart::Ip), T::Net)),
        "fd.lnet" => Some((K::FdLocal(true, NetPart::Ip), T::Net)),
        "fd.rnet" => Some((K::FdLocal(false, NetPart::Ip), T::Net)),
        "fd.net" => Some((K::FdEither(NetPart::Ip), T::Net)),
        "fd.cport" => Some((K::FdClient(NetPart::Port), T::Uint)),
        "fd.sport" => Some((K::FdServer(NetPart::Port), T::Uint)),
        "fd.lport" => Some((K::FdLocal(true, NetPart::Port), T::Uint)),
        "fd.rport" => Some((K::FdLocal(false, NetPart::Port), T::Uint)),
        "fd.port" => Some((K::FdEither(NetPart::Port), T::Uint)),
        "fd.cip.name" => Some((K::FdClient(NetPart::Name), T::Str)),
        "fd.sip.name" => Some((K::FdServer(NetPart::Name), T::Str)),
        "fd.lip.name" => Some((K::FdLocal(true, NetPart::Name), T::Str)),
        "fd.rip.name" => Some((K::FdLocal(false, NetPart::Name), T::Str)),
        "user.uid" => Some((K::User(UserAttr::Uid), T::Uint)),
        "user.name" => Some((K::User(UserAttr::Name), T::Str)),
        "user.loginuid" => Some((K::User(UserAttr::LoginUid), T::Int)),
        "user.loginname" => Some((K::User(UserAttr::LoginName), T::Str)),
        "user.homedir" => Some((K::User(UserAttr::HomeDir), T::Str)),
        "user.shell" => Some((K::User(UserAttr::Shell), T::Str)),
        "group.gid" => Some((K::User(UserAttr::Gid), T::Uint)),
        "group.name" => Some((K::User(UserAttr::GroupName), T::Str)),
        "container.id" => c(ContainerAttr::Id),
        "container.name" => c(ContainerAttr::Name),
        "container.type" => c(ContainerAttr::Type),
        "container.image" => c(ContainerAttr::Image),
        "container.image.id" => c(ContainerAttr::ImageId),
        "container.image.repository" => c(ContainerAttr::ImageRepository),
        "container.image.tag" => c(ContainerAttr::ImageTag),
        "container.image.digest" => c(ContainerAttr::ImageDigest),
        "container.privileged" => Some((K::Container(ContainerAttr::Privileged), T::Bool)),
        "container.start_ts" => Some((K::Container(ContainerAttr::StartTs), T::AbsTime)),
        "container.mounts" => c(ContainerAttr::Mounts),
        "k8s.ns.name" => c(ContainerAttr::K8sNsName),
        "k8s.pod.name" => c(ContainerAttr::K8sPodName),
        "k8s.pod.uid" => c(ContainerAttr::K8sPodUid),
        _ => None,
    }
}

/// Resolve a field name and optional `[arg]`. `in_filter` decides the meaning of
/// index-less ancestor fields (any ancestor in a filter, the parent in an output).
pub(crate) fn resolve(name: &str, arg: Option<&str>, in_filter: bool) -> Result<Field, String> {
    let text = match arg {
        Some(a) => format!("{name}[{a}]"),
        None => name.to_owned(),
    };
    let mk = |kind, ty| {
        Ok(Field {
            kind,
            ty,
            text: text.clone(),
        })
    };
    let no_arg = |kind: Kind, ty| {
        if arg.is_some() {
            Err(format!("field '{name}' does not take an argument"))
        } else {
            Ok(Field {
                kind,
                ty,
                text: text.clone(),
            })
        }
    };
    if let Some((k, t)) = simple(name) {
        return no_arg(k, t);
    }
    let anc = |attr, ty| -> Result<Field, String> {
        match arg {
            Some(a) => {
                let n: usize = a
                    .trim()
                    .parse()
                    .map_err(|_| format!("field '{name}': ancestor index '{a}' is not a number"))?;
                if n > MAX_ANCESTORS {
                    return Err(format!(
                        "field '{name}': ancestor index {n} is more than {MAX_ANCESTORS}"
                    ));
                }
                mk(Kind::Proc(n, attr), ty)
            }
            None if in_filter => mk(Kind::AnyAncestor(attr), ty),
            None => mk(Kind::Proc(1, attr), ty),
        }
    };
    match name {
        "proc.aname" => return anc(ProcAttr::Name, FieldType::Str),
        "proc.apid" => return anc(ProcAttr::Pid, FieldType::Uint),
        "proc.aexe" => return anc(ProcAttr::Exe, FieldType::Str),
        "proc.aexepath" => return anc(ProcAttr::ExePath, FieldType::Str),
        "proc.acmdline" => return anc(ProcAttr::Cmdline, FieldType::Str),
        "proc.env" => return mk(Kind::ProcEnv(arg.map(str::to_owned)), FieldType::Str),
        "evt.arg" | "evt.rawarg" => {
            let a = arg.ok_or_else(|| {
                format!("field '{name}' requires an argument: {name}.NAME or {name}[N]")
            })?;
            let sel = match a.parse::<usize>() {
                Ok(i) => ArgSel::Index(i),
                Err(_) => ArgSel::Name(a.to_owned()),
            };
            return if name == "evt.arg" {
                mk(Kind::EvtArg(sel), FieldType::Str)
            } else {
                mk(Kind::EvtRawArg(sel), FieldType::Str)
            };
        }
        "container.label" | "k8s.pod.label" => {
            let a =
                arg.ok_or_else(|| format!("field '{name}' requires an argument: {name}[KEY]"))?;
            return if name == "container.label" {
                mk(Kind::ContainerLabel(a.to_owned()), FieldType::Str)
            } else {
                mk(Kind::K8sPodLabel(a.to_owned()), FieldType::Str)
            };
        }
        "container.mount.dest" | "container.mount.source" => {
            let a = arg.ok_or_else(|| {
                format!("field '{name}' requires an argument: {name}[PATH-GLOB] or [N]")
            })?;
            return mk(
                Kind::ContainerMount {
                    dest: name.ends_with("dest"),
                    key: a.to_owned(),
                },
                FieldType::Str,
            );
        }
        _ => {}
    }
    // dotted argument forms: evt.arg.flags, evt.rawarg.res, container.label.app, k8s.pod.label.app
    for prefix in [
        "evt.arg.",
        "evt.rawarg.",
        "container.label.",
        "k8s.pod.label.",
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            if arg.is_some() {
                return Err(format!("field '{name}' does not take an argument"));
            }
            let base = &prefix[..prefix.len() - 1];
            let mut f = resolve(base, Some(rest), in_filter)?;
            f.text = name.to_owned();
            return Ok(f);
        }
    }
    Err(format!("filter_check called with nonexistent field {name}"))
}

/// An extracted value: borrowed from the event or computed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Ip(IpAddr),
    Bytes(Cow<'a, [u8]>),
}

impl<'a> From<Value<'a>> for Val<'a> {
    fn from(v: Value<'a>) -> Val<'a> {
        match v {
            Value::Str(s) => Val::Str(Cow::Borrowed(s)),
            Value::Int(i) => Val::Int(i),
            Value::Uint(u) => Val::Uint(u),
            Value::Bool(b) => Val::Bool(b),
            Value::Ip(ip) => Val::Ip(ip),
            Value::Bytes(b) => Val::Bytes(Cow::Borrowed(b)),
        }
    }
}

impl Val<'_> {
    #[inline]
    pub(crate) fn to_text(&self) -> Cow<'_, str> {
        match self {
            Val::Str(s) => Cow::Borrowed(s.as_ref()),
            Val::Int(i) => Cow::Owned(i.to_string()),
            Val::Uint(u) => Cow::Owned(u.to_string()),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Val::Ip(ip) => Cow::Owned(ip.to_string()),
            Val::Bytes(b) => String::from_utf8_lossy(b),
        }
    }

    pub(crate) fn as_i128(&self) -> Option<i128> {
        match self {
            Val::Int(i) => Some(i128::from(*i)),
            Val::Uint(u) => Some(i128::from(*u)),
            Val::Bool(b) => Some(i128::from(*b)),
            Val::Str(s) => parse_number(s),
            _ => None,
        }
    }
}

/// Parse decimal or `0x` hex integers (Falco numbers).
pub(crate) fn parse_number(s: &str) -> Option<i128> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return i128::from_str_radix(h, 16).ok();
    }
    if let Ok(i) = s.parse::<i128>() {
        return Some(i);
    }
    // Number ::= [+\-]?[0-9]+[\.]?[0-9]*([eE][+\-][0-9]+)? — accept integral floats
    let f: f64 = s.parse().ok()?;
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30 {
        Some(f as i128)
    } else {
        None
    }
}

fn open_flags<E: Event + ?Sized>(e: &E) -> Option<(u8, bool)> {
    e.open_mode()
}

fn mode_has_exec<E: Event + ?Sized>(e: &E) -> bool {
    match e.arg("mode") {
        Some(Value::Str(s)) => {
            if s.contains("S_IX") {
                return true;
            }
            let t = s.trim();
            let n = if let Some(o) = t.strip_prefix("0o") {
                i64::from_str_radix(o, 8).ok()
            } else if t.starts_with('0') && t.len() > 1 {
                i64::from_str_radix(t, 8).ok()
            } else {
                t.parse().ok()
            };
            n.is_some_and(|n| n & 0o111 != 0)
        }
        Some(v) => v.as_i64().is_some_and(|n| n & 0o111 != 0),
        None => false,
    }
}

fn errno_name(code: i64) -> Cow<'static, str> {
    const NAMES: &[&str] = &[
        "SUCCESS",
        "EPERM",
        "ENOENT",
        "ESRCH",
        "EINTR",
        "EIO",
        "ENXIO",
        "E2BIG",
        "ENOEXEC",
        "EBADF",
        "ECHILD",
        "EAGAIN",
        "ENOMEM",
        "EACCES",
        "EFAULT",
        "ENOTBLK",
        "EBUSY",
        "EEXIST",
        "EXDEV",
        "ENODEV",
        "ENOTDIR",
        "EISDIR",
        "EINVAL",
        "ENFILE",
        "EMFILE",
        "ENOTTY",
        "ETXTBSY",
        "EFBIG",
        "ENOSPC",
        "ESPIPE",
        "EROFS",
        "EMLINK",
        "EPIPE",
        "EDOM",
        "ERANGE",
        "EDEADLK",
        "ENAMETOOLONG",
        "ENOLCK",
        "ENOSYS",
        "ENOTEMPTY",
        "ELOOP",
        "-41",
        "ENOMSG",
        "EIDRM",
        "ECHRNG",
        "EL2NSYNC",
        "EL3HLT",
        "EL3RST",
        "ELNRNG",
        "EUNATCH",
        "ENOCSI",
        "EL2HLT",
        "EBADE",
        "EBADR",
        "EXFULL",
        "ENOANO",
        "EBADRQC",
        "EBADSLT",
        "-58",
        "EBFONT",
        "ENOSTR",
        "ENODATA",
        "ETIME",
        "ENOSR",
        "ENONET",
        "ENOPKG",
        "EREMOTE",
        "ENOLINK",
        "EADV",
        "ESRMNT",
        "ECOMM",
        "EPROTO",
        "EMULTIHOP",
        "EDOTDOT",
        "EBADMSG",
        "EOVERFLOW",
        "ENOTUNIQ",
        "EBADFD",
        "EREMCHG",
        "ELIBACC",
        "ELIBBAD",
        "ELIBSCN",
        "ELIBMAX",
        "ELIBEXEC",
        "EILSEQ",
        "ERESTART",
        "ESTRPIPE",
        "EUSERS",
        "ENOTSOCK",
        "EDESTADDRREQ",
        "EMSGSIZE",
        "EPROTOTYPE",
        "ENOPROTOOPT",
        "EPROTONOSUPPORT",
        "ESOCKTNOSUPPORT",
        "EOPNOTSUPP",
        "EPFNOSUPPORT",
        "EAFNOSUPPORT",
        "EADDRINUSE",
        "EADDRNOTAVAIL",
        "ENETDOWN",
        "ENETUNREACH",
        "ENETRESET",
        "ECONNABORTED",
        "ECONNRESET",
        "ENOBUFS",
        "EISCONN",
        "ENOTCONN",
        "ESHUTDOWN",
        "ETOOMANYREFS",
        "ETIMEDOUT",
        "ECONNREFUSED",
        "EHOSTDOWN",
        "EHOSTUNREACH",
        "EALREADY",
        "EINPROGRESS",
        "ESTALE",
        "EUCLEAN",
        "ENOTNAM",
        "ENAVAIL",
        "EISNAM",
        "EREMOTEIO",
        "EDQUOT",
        "ENOMEDIUM",
        "EMEDIUMTYPE",
        "ECANCELED",
        "ENOKEY",
        "EKEYEXPIRED",
        "EKEYREVOKED",
        "EKEYREJECTED",
        "EOWNERDEAD",
        "ENOTRECOVERABLE",
        "ERFKILL",
        "-133",
    ];
    let n = code.unsigned_abs();
    match usize::try_from(n).ok().and_then(|i| NAMES.get(i)) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(code.to_string()),
    }
}

fn fmt_time(ns: u64, kind: &Kind) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let sub = ns % 1_000_000_000;
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp(secs) else {
        return ns.to_string();
    };
    let (y, mo, d) = (dt.year(), u8::from(dt.month()), dt.day());
    let (h, mi, s) = (dt.hour(), dt.minute(), dt.second());
    match kind {
        Kind::EvtTimeS => format!("{h:02}:{mi:02}:{s:02}"),
        Kind::EvtTimeIso => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{sub:09}Z"),
        Kind::EvtDatetime => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{sub:09}"),
        _ => format!("{h:02}:{mi:02}:{s:02}.{sub:09}"),
    }
}

/// Falco's `%evt.time` text (`HH:MM:SS.nnnnnnnnn`, UTC) and ISO 8601 time.
pub(crate) fn time_text(ns: u64) -> String {
    fmt_time(ns, &Kind::EvtTime)
}

pub(crate) fn time_iso(ns: u64) -> String {
    fmt_time(ns, &Kind::EvtTimeIso)
}

pub(crate) fn typechar(t: &str) -> &'static str {
    match t {
        "file" => "f",
        "directory" => "d",
        "ipv4" => "4",
        "ipv6" => "6",
        "unix" => "u",
        "pipe" => "p",
        "event" => "e",
        "signalfd" => "s",
        "eventpoll" => "l",
        "inotify" => "i",
        "timerfd" => "t",
        "netlink" => "n",
        "bpf" => "b",
        "userfaultfd" => "u",
        "io_uring" => "r",
        "memfd" => "m",
        _ => "o",
    }
}

fn net_part<E: Event + ?Sized>(e: &E, server: bool, part: NetPart) -> Option<Val<'_>> {
    let attr = match (server, part) {
        (true, NetPart::Ip) => FdAttr::Sip,
        (false, NetPart::Ip) => FdAttr::Cip,
        (true, NetPart::Port) => FdAttr::Sport,
        (false, NetPart::Port) => FdAttr::Cport,
        (true, NetPart::Name) => FdAttr::SipName,
        (false, NetPart::Name) => FdAttr::CipName,
    };
    e.fd(attr).map(Val::from)
}

fn is_server<E: Event + ?Sized>(e: &E) -> bool {
    match e.fd(FdAttr::IsServer) {
        Some(Value::Bool(b)) => b,
        _ => matches!(
            e.event_type_name(),
            "accept" | "accept4" | "listen" | "bind"
        ),
    }
}

fn arg_text<'a>(v: Value<'a>) -> Val<'a> {
    match v {
        Value::Str(s) => Val::Str(Cow::Borrowed(s)),
        Value::Bytes(b) => Val::Str(String::from_utf8_lossy(b)),
        other => Val::Str(Cow::Owned(Val::from(other).to_text().into_owned())),
    }
}

/// Extract one value (for "any ancestor"/"either side" fields use [`for_each`]).
pub(crate) fn extract<'a, E: Event + ?Sized>(f: &Kind, e: &'a E) -> Option<Val<'a>> {
    Some(match f {
        Kind::EvtType => Val::Str(Cow::Borrowed(e.event_type_name())),
        Kind::EvtDir => Val::Str(Cow::Borrowed(if e.is_enter() { ">" } else { "<" })),
        Kind::EvtNum => Val::Uint(e.num()?),
        Kind::EvtTime | Kind::EvtRawtime => Val::Uint(e.time_ns()),
        Kind::EvtTimeS | Kind::EvtTimeIso | Kind::EvtDatetime => {
            Val::Str(Cow::Owned(fmt_time(e.time_ns(), f)))
        }
        Kind::EvtRes => {
            let r = e.res()?;
            Val::Str(if r >= 0 {
                Cow::Borrowed("SUCCESS")
            } else {
                errno_name(r)
            })
        }
        Kind::EvtRawres => Val::Int(e.res()?),
        Kind::EvtFailed => Val::Bool(e.res()? < 0),
        Kind::EvtIsOpenRead => Val::Bool(open_flags(e).is_some_and(|(a, _)| a == 0 || a == 2)),
        Kind::EvtIsOpenWrite => Val::Bool(open_flags(e).is_some_and(|(a, _)| a == 1 || a == 2)),
        Kind::EvtIsOpenCreate => Val::Bool(open_flags(e).is_some_and(|(_, c)| c)),
        Kind::EvtIsOpenExec => Val::Bool(open_flags(e).is_some_and(|(_, c)| c) && mode_has_exec(e)),
        Kind::EvtArg(sel) => match sel {
            ArgSel::Name(n) => arg_text(e.arg(n)?),
            ArgSel::Index(i) => arg_text(e.arg_at(*i)?.1),
        },
        Kind::EvtRawArg(sel) => match sel {
            ArgSel::Name(n) => Val::from(e.arg(n)?),
            ArgSel::Index(i) => Val::from(e.arg_at(*i)?.1),
        },
        Kind::EvtArgs => {
            let mut s = String::new();
            let mut i = 0;
            while let Some((k, v)) = e.arg_at(i) {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(k);
                s.push('=');
                s.push_str(&Val::from(v).to_text());
                i += 1;
                if i > 256 {
                    break;
                }
            }
            Val::Str(Cow::Owned(s))
        }
        Kind::EvtBuffer => Val::Bytes(Cow::Borrowed(e.buffer()?)),
        Kind::EvtSource => Val::Str(Cow::Borrowed("syscall")),
        Kind::Proc(level, attr) => Val::from(e.proc(*level, *attr)?),
        Kind::AnyAncestor(attr) => Val::from(e.proc(1, *attr)?),
        Kind::ProcDuration => {
            let start = e.proc(0, ProcAttr::StartTs)?.as_i64()?;
            Val::Uint(u64::try_from(i128::from(e.time_ns()) - i128::from(start)).unwrap_or(0))
        }
        Kind::ProcExeCtimeDurationProcStart => {
            let start = e.proc(0, ProcAttr::StartTs)?.as_i64()?;
            let ctime = e.proc(0, ProcAttr::ExeInoCtime)?.as_i64()?;
            Val::Uint(u64::try_from(i128::from(start) - i128::from(ctime)).unwrap_or(0))
        }
        Kind::ProcEnv(Some(k)) => Val::Str(Cow::Borrowed(e.proc_env(k)?)),
        Kind::ProcEnv(None) => Val::Str(Cow::Borrowed(e.proc_env_all()?)),
        Kind::Fd(FdAttr::SockFamily) => match e.fd(FdAttr::SockFamily) {
            Some(v) => Val::from(v),
            None => match e.fd(FdAttr::Type)? {
                Value::Str("ipv4") | Value::Str("ipv6") => Val::Str(Cow::Borrowed("ip")),
                Value::Str("unix") => Val::Str(Cow::Borrowed("unix")),
                _ => return None,
            },
        },
        Kind::Fd(attr) => Val::from(e.fd(*attr)?),
        Kind::FdTypechar => match e.fd(FdAttr::Type)? {
            Value::Str(t) => Val::Str(Cow::Borrowed(typechar(t))),
            _ => return None,
        },
        Kind::FdIsServer => Val::Bool(is_server(e)),
        Kind::FdServer(p) => net_part(e, true, *p)?,
        Kind::FdClient(p) => net_part(e, false, *p)?,
        Kind::FdLocal(local, p) => {
            let srv = is_server(e);
            // local side is the server side when this process is the server
            net_part(e, *local == srv, *p)?
        }
        Kind::FdEither(p) => net_part(e, true, *p).or_else(|| net_part(e, false, *p))?,
        Kind::User(a) => Val::from(e.user(*a)?),
        Kind::Container(a) => Val::from(e.container(*a)?),
        Kind::ContainerLabel(k) => Val::Str(Cow::Borrowed(e.container_label(k)?)),
        Kind::K8sPodLabel(k) => Val::Str(Cow::Borrowed(e.k8s_pod_label(k)?)),
        Kind::ContainerMount { dest, key } => {
            let idx: Option<usize> = key.parse().ok();
            let mut i = 0;
            let mut found = None;
            while let Some(m) = e.container_mount(i) {
                let hit = match idx {
                    Some(n) => n == i,
                    None => glob_match(
                        key.as_bytes(),
                        if *dest { m.source } else { m.dest }.as_bytes(),
                        false,
                    ),
                };
                if hit {
                    found = Some(if *dest { m.dest } else { m.source });
                    break;
                }
                i += 1;
                if i > 4096 {
                    break;
                }
            }
            Val::Str(Cow::Borrowed(found.unwrap_or("N/A")))
        }
    })
}

/// Call `f` on every value of a multi-valued extraction (any ancestor, either side
/// of a socket); stop early when `f` returns true. Returns whether any call did.
pub(crate) fn any_value<'a, E: Event + ?Sized>(
    kind: &Kind,
    e: &'a E,
    mut f: impl FnMut(&Val<'a>) -> bool,
) -> Option<bool> {
    match kind {
        Kind::AnyAncestor(attr) => {
            let mut seen = false;
            for level in 1..=MAX_ANCESTORS {
                let Some(v) = e.proc(level, *attr) else { break };
                seen = true;
                if f(&Val::from(v)) {
                    return Some(true);
                }
            }
            if seen {
                Some(false)
            } else {
                None
            }
        }
        Kind::FdEither(p) => {
            let a = net_part(e, true, *p);
            let b = net_part(e, false, *p);
            if a.is_none() && b.is_none() {
                return None;
            }
            Some(a.as_ref().is_some_and(&mut f) || b.as_ref().is_some_and(&mut f))
        }
        _ => {
            let v = extract(kind, e)?;
            Some(f(&v))
        }
    }
}

/// Shell-style wildcard match (`*`, `?`, `[...]`), iterative with backtracking.
pub(crate) fn glob_match(pat: &[u8], s: &[u8], icase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if icase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut i) = (0usize, 0usize);
    let (mut star_p, mut star_i) = (usize::MAX, 0usize);
    while i < s.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star_p = p;
                    star_i = i;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(pat, p, s[i], icase) {
                        if matched {
                            p = next;
                            i += 1;
                            continue;
                        }
                    } else if eq(b'[', s[i]) {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pat.len() => {
                    if eq(pat[p + 1], s[i]) {
                        p += 2;
                        i += 1;
                        continue;
                    }
                }
                c => {
                    if eq(c, s[i]) {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
            }
        }
        if star_p != usize::MAX {
            p = star_p + 1;
            star_i += 1;
            i = star_i;
            continue;
        }
        return false;
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}

fn class_match(pat: &[u8], start: usize, c: u8, icase: bool) -> Option<(bool, usize)> {
    let mut j = start + 1;
    let neg = matches!(pat.get(j), Some(b'!') | Some(b'^'));
    if neg {
        j += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let b = *pat.get(j)?;
        if b == b']' && !first {
            return Some((matched != neg, j + 1));
        }
        first = false;
        if pat.get(j + 1) == Some(&b'-') && pat.get(j + 2).is_some_and(|x| *x != b']') {
            let hi = *pat.get(j + 2)?;
            let in_range = |x: u8| b <= x && x <= hi;
            if in_range(c)
                || (icase && (in_range(c.to_ascii_lowercase()) || in_range(c.to_ascii_uppercase())))
            {
                matched = true;
            }
            j += 3;
        } else {
            if b == c || (icase && b.eq_ignore_ascii_case(&c)) {
                matched = true;
            }
            j += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"/proc*", b"/proc/1", false));
        assert!(glob_match(b"*.sh", b"a.sh", false));
        assert!(!glob_match(b"*.sh", b"a.shx", false));
        assert!(glob_match(b"a?c", b"abc", false));
        assert!(glob_match(b"[a-c]x", b"bx", false));
        assert!(!glob_match(b"[!a-c]x", b"bx", false));
        assert!(glob_match(b"*.SH", b"a.sh", true));
        assert!(glob_match(b"**a*b*c", &b"xaxbxxc"[..], false));
    }

    #[test]
    fn resolve_fields() {
        assert!(resolve("proc.name", None, true).is_ok());
        assert_eq!(
            resolve("proc.aname", Some("2"), true).unwrap().kind,
            Kind::Proc(2, ProcAttr::Name)
        );
        assert_eq!(
            resolve("proc.aname", None, true).unwrap().kind,
            Kind::AnyAncestor(ProcAttr::Name)
        );
        assert_eq!(
            resolve("evt.arg.flags", None, true).unwrap().kind,
            Kind::EvtArg(ArgSel::Name("flags".into()))
        );
        assert!(resolve("proc.nope", None, true).is_err());
        assert!(resolve("proc.name", Some("x"), true).is_err());
        assert!(resolve("evt.arg", None, true).is_err());
    }
}
