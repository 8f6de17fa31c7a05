//! Password fields on Linux, from the accessibility bus (AT-SPI).
//!
//! Toolkits (GTK, Qt, browsers with accessibility on) publish their widgets on a D-Bus of their own,
//! the accessibility bus. When a widget gains the keyboard focus it emits
//! `object:state-changed:focused`; its role says whether it is a password field (AT-SPI role
//! "password text"). This watcher listens for those events on the agent's runtime and tells the text
//! pipeline [`SourceEvent::PasswordField`], so keys typed into a password field are dropped unread.
//!
//! Ordering is the subtle part. The pipeline forgets the password state at every window change
//! (`Focus`), and the accessibility event for a new window's focused field races with the X11 event
//! for the window itself. So [`with_password_fields`] wraps the platform source: every `Focus` it
//! produces is sent from here, under the same lock as the watcher's own events, immediately followed
//! by the password state that applies to that window. Whatever order the two buses deliver in, the
//! last word the pipeline hears is the current one.
//!
//! The state applies to a window only if the focused field belongs to the window's process (the
//! accessibility bus tells the sender's process id, X11 `_NET_WM_PID` the window's): an application
//! that quit with its password field focused, or a switch to a program without accessibility (a
//! terminal), never leaves the keyboard unread. A window brought back to the front starts from the
//! field its process focused last, which toolkits focus again.
//!
//! Without an accessibility bus (not installed, not started yet) the agent logs that once and keeps
//! the other exclusions (excluded applications, password-titled windows); it looks again every minute.

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex};
use zbus::export::futures_core::Stream;
use zbus::zvariant::{Structure, Value};
use zbus::{Connection, MatchRule, Message, MessageStream};

use super::{Source, SourceError, SourceEvent, WindowInfo};

/// AT-SPI2's `ATSPI_ROLE_PASSWORD_TEXT`: "a text object uses for passwords, or other places where
/// the text content is not shown visibly to the user".
pub const ROLE_PASSWORD_TEXT: u32 = 40;

/// How long a question to an application may take; a hung application gets no keys anyway.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How often to look for an accessibility bus that is not (or no longer) there.
const RETRY: Duration = Duration::from_secs(60);
/// Process ids remembered per bus name (applications come and go; the map is cleared when full).
const PIDS_MAX: usize = 256;

/// The event this watcher needs the toolkits to send.
const FOCUS_EVENT: &str = "object:state-changed:focused";
/// The registry daemon's bus name and interface, and its object.
const REGISTRY: &str = "org.a11y.atspi.Registry";
const REGISTRY_PATH: &str = "/org/a11y/atspi/registry";

/// Whether an accessible object with AT-SPI role `role` is a password field.
pub fn is_password_role(role: u32) -> bool {
    role == ROLE_PASSWORD_TEXT
}

/// An object on the accessibility bus: its sender's unique name and its object path.
pub type ObjectRef = (String, String);

/// What has the focus inside applications, as the accessibility bus last said.
///
/// Toolkits take the focus from a field when its window is deactivated and give it back when the
/// window is activated again, but that event can trail the keys typed into the window. So the
/// tracker also remembers, per process, whether its last focused object was a password field, and
/// a window coming back to the front starts from that.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FocusTracker {
    current: Option<Focused>,
    /// Per process id: whether the object it last focused is a password field.
    last: HashMap<u32, bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Focused {
    object: ObjectRef,
    pid: Option<u32>,
    password: bool,
}

impl FocusTracker {
    /// `object` (owned by process `pid`, of AT-SPI role `role` when the application answered) gained
    /// the focus. An unknown role counts as not a password field: the application did not answer
    /// (hung or gone), so it is not taking keys either.
    pub fn gained(&mut self, object: ObjectRef, pid: Option<u32>, role: Option<u32>) {
        let password = role.is_some_and(is_password_role);
        if let Some(pid) = pid {
            if self.last.len() >= PIDS_MAX && !self.last.contains_key(&pid) {
                self.last.clear();
            }
            self.last.insert(pid, password);
        }
        self.current = Some(Focused {
            object,
            pid,
            password,
        });
    }

    /// `object` lost the focus; only the object that has it can give it up (events for the old and
    /// the new object can arrive in either order).
    pub fn lost(&mut self, object: &ObjectRef) {
        if self.current.as_ref().is_some_and(|f| &f.object == object) {
            self.current = None;
        }
    }

    /// The application at `sender` (process `pid`) left the accessibility bus.
    pub fn gone(&mut self, sender: &str, pid: Option<u32>) {
        if self.current.as_ref().is_some_and(|f| f.object.0 == sender) {
            self.current = None;
        }
        if let Some(pid) = pid {
            self.last.remove(&pid);
        }
    }

    /// Whether the focus is in a password field, wherever it is.
    pub fn password(&self) -> bool {
        self.current.as_ref().is_some_and(|f| f.password)
    }

    /// Whether `window`, just brought to the front, has a password field focused: the field that has
    /// the focus if it is the window's process's, else the one that process focused last. When
    /// either process is unknown, the focused field's state stands (erring on the side of not reading).
    pub fn password_in(&self, window: &WindowInfo) -> bool {
        match (window.pid, self.current.as_ref()) {
            (Some(pid), Some(f)) if f.pid == Some(pid) || f.pid.is_none() => f.password,
            (Some(pid), _) => self.last.get(&pid).copied().unwrap_or(false),
            (None, Some(f)) => f.password,
            (None, None) => false,
        }
    }
}

/// The tracker and the channel it reports into, behind one lock so that a window change and the
/// password state after it reach the pipeline in that order.
struct Shared {
    tracker: FocusTracker,
    /// What the pipeline last heard (a `Focus` resets it to `false`).
    told: bool,
    tx: mpsc::Sender<SourceEvent>,
}

impl Shared {
    /// The event to send so the pipeline believes `password`, if it believes otherwise.
    fn tell(&mut self, password: bool) -> Option<SourceEvent> {
        if self.told == password {
            return None;
        }
        self.told = password;
        if password {
            tracing::info!("a password field has the focus; typing there is not read");
        } else {
            tracing::info!("the focus left the password field");
        }
        Some(SourceEvent::PasswordField(password))
    }
}

/// Wraps the platform source so that password fields reported on the accessibility bus reach `tx`
/// (the pipeline's channel, which also carries the wrapped source's events), and starts the watcher
/// on the current tokio runtime.
pub fn with_password_fields(
    inner: Box<dyn Source>,
    tx: mpsc::Sender<SourceEvent>,
) -> Box<dyn Source> {
    let shared = Arc::new(Mutex::new(Shared {
        tracker: FocusTracker::default(),
        told: false,
        tx,
    }));
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(watch(Arc::clone(&shared)));
        }
        Err(_) => tracing::debug!("no async runtime; password fields are not watched"),
    }
    Box::new(PasswordAware { inner, shared })
}

/// The platform source, with window changes sent in step with the password state.
struct PasswordAware {
    inner: Box<dyn Source>,
    shared: Arc<Mutex<Shared>>,
}

impl PasswordAware {
    /// Sends `Focus(window)` and the password state of the newly focused window; `false` when the
    /// pipeline has gone.
    fn focus(&self, window: WindowInfo) -> bool {
        let mut shared = self.shared.blocking_lock();
        let password = shared.tracker.password_in(&window);
        if shared.tx.blocking_send(SourceEvent::Focus(window)).is_err() {
            return false;
        }
        shared.told = false;
        match shared.tell(password) {
            Some(event) => shared.tx.blocking_send(event).is_ok(),
            None => true,
        }
    }
}

impl Source for PasswordAware {
    fn current_window(&mut self) -> Result<Option<WindowInfo>, SourceError> {
        // Sent from here like every later window change, so the watcher cannot overtake it; the
        // caller therefore gets nothing to send itself.
        if let Some(window) = self.inner.current_window()? {
            self.focus(window);
        }
        Ok(None)
    }

    fn next_event(&mut self) -> Result<Option<SourceEvent>, SourceError> {
        loop {
            match self.inner.next_event()? {
                Some(SourceEvent::Focus(window)) => {
                    if !self.focus(window) {
                        return Ok(None);
                    }
                }
                other => return Ok(other),
            }
        }
    }
}

/// Why the accessibility bus could not be used.
#[derive(Debug, thiserror::Error)]
enum BusError {
    #[error("no accessibility bus address (X root window AT_SPI_BUS, session bus org.a11y.Bus)")]
    NoAddress,
    #[error(transparent)]
    DBus(#[from] zbus::Error),
}

/// Connects to the accessibility bus and follows focus changes until the pipeline goes away;
/// reconnects every minute while there is no bus.
async fn watch(shared: Arc<Mutex<Shared>>) {
    let mut said_missing = false;
    loop {
        match listen(&shared).await {
            Ok(Ended::PipelineGone) => return,
            Ok(Ended::BusClosed) => {
                tracing::warn!("the accessibility bus closed; looking for it again");
                forget(&shared).await;
            }
            Err(e) => {
                if !said_missing {
                    tracing::info!(
                        reason = %e,
                        "password fields are recognised only in excluded applications and \
                         password-titled windows"
                    );
                    said_missing = true;
                }
                forget(&shared).await;
            }
        }
        if shared.lock().await.tx.is_closed() {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Without a bus nothing is known: the focus is in no password field.
async fn forget(shared: &Mutex<Shared>) {
    let mut shared = shared.lock().await;
    shared.tracker = FocusTracker::default();
    if let Some(event) = shared.tell(false) {
        let _ = shared.tx.send(event).await;
    }
}

enum Ended {
    PipelineGone,
    BusClosed,
}

/// One connection's life: register for focus events, then follow them.
async fn listen(shared: &Mutex<Shared>) -> Result<Ended, BusError> {
    let bus = connect().await?;
    let focus_rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.a11y.atspi.Event.Object")?
        .member("StateChanged")?
        .arg(0, "focused")?
        .build();
    let gone_rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender("org.freedesktop.DBus")?
        .interface("org.freedesktop.DBus")?
        .member("NameOwnerChanged")?
        .build();
    let mut focus = MessageStream::for_match_rule(focus_rule, &bus, Some(256)).await?;
    let mut gone = MessageStream::for_match_rule(gone_rule, &bus, Some(256)).await?;
    register(&bus).await;
    tracing::info!("password fields are recognised through the accessibility bus");
    let mut pids = HashMap::new();
    loop {
        let update = tokio::select! {
            message = next(&mut focus) => match message {
                Some(message) => focus_update(&bus, &message, &mut pids).await,
                None => return Ok(Ended::BusClosed),
            },
            message = next(&mut gone) => match message {
                Some(message) => gone_update(&message, &mut pids),
                None => return Ok(Ended::BusClosed),
            },
        };
        let Some(update) = update else { continue };
        let mut shared = shared.lock().await;
        update(&mut shared.tracker);
        let password = shared.tracker.password();
        if let Some(event) = shared.tell(password) {
            if shared.tx.send(event).await.is_err() {
                return Ok(Ended::PipelineGone);
            }
        }
    }
}

/// A change to apply to the tracker under the lock.
type Update = Box<dyn FnOnce(&mut FocusTracker) + Send>;

/// The next message of `stream`; `None` when the connection closed.
async fn next(stream: &mut MessageStream) -> Option<Message> {
    loop {
        match poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await? {
            Ok(message) => return Some(message),
            Err(e) => tracing::debug!(error = %e, "unreadable message on the accessibility bus"),
        }
    }
}

/// A `focused` state change: who, gained or lost, and (when gained) its role and process.
async fn focus_update(
    bus: &Connection,
    message: &Message,
    pids: &mut HashMap<String, Option<u32>>,
) -> Option<Update> {
    let header = message.header();
    let sender = header.sender()?.to_string();
    let path = header.path()?.to_string();
    let body = message.body();
    let fields: Structure<'_> = body.deserialize().ok()?;
    let gained = match fields.fields().get(1) {
        Some(Value::I32(detail)) => *detail != 0,
        _ => return None,
    };
    let object = (sender.clone(), path.clone());
    if !gained {
        return Some(Box::new(move |t: &mut FocusTracker| t.lost(&object)));
    }
    let role = role(bus, &sender, &path).await;
    let pid = match pids.get(&sender) {
        Some(pid) => *pid,
        None => {
            let pid = pid(bus, &sender).await;
            if pids.len() >= PIDS_MAX {
                pids.clear();
            }
            pids.insert(sender, pid);
            pid
        }
    };
    tracing::debug!(?role, ?pid, "focus changed on the accessibility bus");
    Some(Box::new(move |t: &mut FocusTracker| {
        t.gained(object, pid, role)
    }))
}

/// An application left the bus (`NameOwnerChanged` of its unique name to nobody).
fn gone_update(message: &Message, pids: &mut HashMap<String, Option<u32>>) -> Option<Update> {
    let (name, _old, new): (String, String, String) = message.body().deserialize().ok()?;
    if !new.is_empty() || !name.starts_with(':') {
        return None;
    }
    let pid = pids.remove(&name).flatten();
    Some(Box::new(move |t: &mut FocusTracker| t.gone(&name, pid)))
}

/// The AT-SPI role of an object, if its application answers.
async fn role(bus: &Connection, sender: &str, path: &str) -> Option<u32> {
    let reply = bus
        .call_method(
            Some(sender),
            path,
            Some("org.a11y.atspi.Accessible"),
            "GetRole",
            &(),
        )
        .await;
    match reply.and_then(|r| r.body().deserialize::<u32>()) {
        Ok(role) => Some(role),
        Err(e) => {
            tracing::debug!(error = %e, "the focused object's role is unknown");
            None
        }
    }
}

/// The process id behind a bus name, as the bus daemon knows it.
async fn pid(bus: &Connection, sender: &str) -> Option<u32> {
    bus.call_method(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        Some("org.freedesktop.DBus"),
        "GetConnectionUnixProcessID",
        &(sender,),
    )
    .await
    .and_then(|r| r.body().deserialize::<u32>())
    .ok()
}

/// Asks the registry daemon to have toolkits send focus events: the ATK bridge sends only the
/// events some listener registered for. Registries before AT-SPI 2.46 take the event name alone.
async fn register(bus: &Connection) {
    let current = bus
        .call_method(
            Some(REGISTRY),
            REGISTRY_PATH,
            Some(REGISTRY),
            "RegisterEvent",
            &(FOCUS_EVENT, Vec::<&str>::new(), ""),
        )
        .await;
    if let Err(e) = current {
        let older = bus
            .call_method(
                Some(REGISTRY),
                REGISTRY_PATH,
                Some(REGISTRY),
                "RegisterEvent",
                &(FOCUS_EVENT,),
            )
            .await;
        if older.is_err() {
            tracing::warn!(error = %e, "cannot register for focus events; toolkits may not send them");
        }
    }
}

/// The accessibility bus, at the address the X root window or the session bus gives.
async fn connect() -> Result<Connection, BusError> {
    let address = match address_from_x11() {
        Some(address) => address,
        None => address_from_session().await?,
    };
    Ok(zbus::connection::Builder::address(address.as_str())?
        .method_timeout(CALL_TIMEOUT)
        .build()
        .await?)
}

/// The `AT_SPI_BUS` property of the X root window, which the accessibility bus launcher sets.
fn address_from_x11() -> Option<String> {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _};
    let (conn, screen) = x11rb::connect(None).ok()?;
    let root = conn.setup().roots.get(screen)?.root;
    let atom = conn
        .intern_atom(true, b"AT_SPI_BUS")
        .ok()?
        .reply()
        .ok()?
        .atom;
    if atom == u32::from(AtomEnum::NONE) {
        return None;
    }
    let reply = conn
        .get_property(false, root, atom, AtomEnum::STRING, 0, 1024)
        .ok()?
        .reply()
        .ok()?;
    let address = String::from_utf8(reply.value).ok()?;
    (!address.is_empty()).then_some(address)
}

/// `org.a11y.Bus.GetAddress` on the session bus (which starts the launcher if it is installed).
async fn address_from_session() -> Result<String, BusError> {
    let session = zbus::connection::Builder::session()?
        .method_timeout(CALL_TIMEOUT)
        .build()
        .await?;
    let reply = session
        .call_method(
            Some("org.a11y.Bus"),
            "/org/a11y/bus",
            Some("org.a11y.Bus"),
            "GetAddress",
            &(),
        )
        .await?;
    let address: String = reply.body().deserialize()?;
    if address.is_empty() {
        return Err(BusError::NoAddress);
    }
    Ok(address)
}

#[cfg(test)]
mod tests;
