//! A session's timers as pure state: the transport idle timeout (any frame from the client, pongs
//! included, resets it), the profile's idle limit (only client events reset it) and longest
//! duration, each warned a little before the cut, the token's expiry, and when to ping the
//! upstream. Nothing here sleeps: the uplink asks [`Clock::deadline`] when to wake and
//! [`Clock::due`] what is due then, so the rules are unit-tested without sockets, on tokio's paused
//! clock.
//!
//! Frames only ever move deadlines later, so the uplink keeps one timer armed at the last deadline
//! it was given and re-arms it only when it fires: the per-frame cost is a clock reading.

use std::time::Duration;

use tokio::time::Instant;

use crate::close::End;

/// The limits a clock enforces (from the relay's settings and the user's profile).
#[derive(Debug, Clone)]
pub struct ClockSettings {
    /// No frame at all from the client for this long ends the session.
    pub transport_idle: Duration,
    /// No client event for this long ends the session (the profile's `idle_timeout_secs`).
    pub idle: Option<Duration>,
    /// The longest session (the profile's `max_session_secs`).
    pub max_duration: Option<Duration>,
    /// How long before an idle or duration cut the client is warned.
    pub warn_before: Duration,
    /// The user's token expires after this long (with `end_session_on_token_expiry`).
    pub token_left: Option<Duration>,
    /// How often the upstream is pinged.
    pub upstream_ping: Duration,
}

/// What is due.
#[derive(Debug, Clone, PartialEq)]
pub enum Alarm {
    /// The session ends (idle, duration, token expiry).
    End(End),
    /// Tell the client the session is about to be cut for idleness, in `left`.
    IdleWarning { left: Duration },
    /// Tell the client the session reaches its longest duration `max` in `left`.
    DurationWarning { max: Duration, left: Duration },
    /// Send the upstream a ping.
    PingUpstream,
}

/// One session's timers. See the module docs.
#[derive(Debug, Clone)]
pub struct Clock {
    settings: ClockSettings,
    started: Instant,
    last_frame: Instant,
    last_event: Instant,
    idle_warned: bool,
    duration_warned: bool,
    next_ping: Instant,
}

impl Clock {
    pub fn new(settings: ClockSettings, now: Instant) -> Clock {
        Clock {
            next_ping: now + settings.upstream_ping,
            settings,
            started: now,
            last_frame: now,
            last_event: now,
            idle_warned: false,
            duration_warned: false,
        }
    }

    /// Milliseconds since the session started (the guard's clock).
    pub fn elapsed_ms(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.started).as_secs_f64() * 1000.0
    }

    /// A frame of any kind arrived from the client.
    pub fn frame(&mut self, now: Instant) {
        self.last_frame = now;
    }

    /// A client event (text or binary) arrived: the profile's idle clock starts again.
    pub fn event(&mut self, now: Instant) {
        self.last_frame = now;
        self.last_event = now;
        self.idle_warned = false;
    }

    fn idle_cut(&self) -> Option<Instant> {
        self.settings.idle.map(|idle| self.last_event + idle)
    }

    fn duration_cut(&self) -> Option<Instant> {
        self.settings.max_duration.map(|max| self.started + max)
    }

    /// When a warning for a cut at `cut` is due, if it has not been given: `warn_before` earlier,
    /// but not before the start of what it warns about (no warning for a limit shorter than that).
    fn warning_at(&self, cut: Instant, from: Instant) -> Option<Instant> {
        cut.checked_sub(self.settings.warn_before).filter(|at| *at > from)
    }

    /// The earliest instant something may be due.
    pub fn deadline(&self) -> Instant {
        let mut at = (self.last_frame + self.settings.transport_idle).min(self.next_ping);
        if let Some(cut) = self.idle_cut() {
            let warn = (!self.idle_warned)
                .then(|| self.warning_at(cut, self.last_event))
                .flatten();
            at = at.min(warn.unwrap_or(cut));
        }
        if let Some(cut) = self.duration_cut() {
            let warn = (!self.duration_warned)
                .then(|| self.warning_at(cut, self.started))
                .flatten();
            at = at.min(warn.unwrap_or(cut));
        }
        if let Some(left) = self.settings.token_left {
            at = at.min(self.started + left);
        }
        at
    }

    /// The most pressing alarm due at `now`, if any; a warning or ping is given once. Call until
    /// `None` or an [`Alarm::End`] (which stays due).
    pub fn due(&mut self, now: Instant) -> Option<Alarm> {
        if now >= self.last_frame + self.settings.transport_idle {
            return Some(Alarm::End(End::IdleTimeout));
        }
        if self.idle_cut().is_some_and(|cut| now >= cut) {
            return Some(Alarm::End(End::IdleTimeout));
        }
        if self.duration_cut().is_some_and(|cut| now >= cut) {
            return Some(Alarm::End(End::MaxDuration));
        }
        if self.settings.token_left.is_some_and(|left| now >= self.started + left) {
            return Some(Alarm::End(End::TokenExpired));
        }
        if let Some(cut) = self.idle_cut()
            && !self.idle_warned
            && self.warning_at(cut, self.last_event).is_some_and(|at| now >= at)
        {
            self.idle_warned = true;
            return Some(Alarm::IdleWarning {
                left: cut.saturating_duration_since(now),
            });
        }
        if let (Some(cut), Some(max)) = (self.duration_cut(), self.settings.max_duration)
            && !self.duration_warned
            && self.warning_at(cut, self.started).is_some_and(|at| now >= at)
        {
            self.duration_warned = true;
            return Some(Alarm::DurationWarning {
                max,
                left: cut.saturating_duration_since(now),
            });
        }
        if now >= self.next_ping {
            self.next_ping = now + self.settings.upstream_ping;
            return Some(Alarm::PingUpstream);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{advance, sleep_until};

    fn settings() -> ClockSettings {
        ClockSettings {
            transport_idle: Duration::from_secs(300),
            idle: Some(Duration::from_secs(60)),
            max_duration: Some(Duration::from_secs(120)),
            warn_before: Duration::from_secs(10),
            token_left: None,
            upstream_ping: Duration::from_secs(15),
        }
    }

    /// Sleep to the clock's deadline and collect what is due there, as a session's uplink does.
    async fn next(clock: &mut Clock) -> (Duration, Vec<Alarm>) {
        sleep_until(clock.deadline()).await;
        let now = Instant::now();
        let mut alarms = Vec::new();
        while let Some(a) = clock.due(now) {
            let end = matches!(a, Alarm::End(_));
            alarms.push(a);
            if end {
                break;
            }
        }
        (now - clock.started, alarms)
    }

    #[tokio::test(start_paused = true)]
    async fn pings_warnings_and_cuts_come_in_order() {
        let mut clock = Clock::new(settings(), Instant::now());
        let mut seen = Vec::new();
        loop {
            let (at, alarms) = next(&mut clock).await;
            let end = alarms.iter().any(|a| matches!(a, Alarm::End(_)));
            seen.push((at.as_secs(), alarms));
            if end {
                break;
            }
        }
        let s = |n| Duration::from_secs(n);
        assert_eq!(
            seen,
            vec![
                (15, vec![Alarm::PingUpstream]),
                (30, vec![Alarm::PingUpstream]),
                (45, vec![Alarm::PingUpstream]),
                (50, vec![Alarm::IdleWarning { left: s(10) }]),
                (60, vec![Alarm::End(End::IdleTimeout)]),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn client_events_put_off_the_idle_cut_but_not_the_duration() {
        let mut clock = Clock::new(settings(), Instant::now());
        let mut seen = Vec::new();
        loop {
            let (at, alarms) = next(&mut clock).await;
            // The client speaks whenever it is warned of idleness.
            for a in &alarms {
                if matches!(a, Alarm::IdleWarning { .. }) {
                    clock.event(Instant::now());
                }
            }
            let alarms: Vec<_> = alarms.into_iter().filter(|a| *a != Alarm::PingUpstream).collect();
            if !alarms.is_empty() {
                seen.push((at.as_secs(), alarms.clone()));
            }
            if alarms.iter().any(|a| matches!(a, Alarm::End(_))) {
                break;
            }
        }
        let s = |n| Duration::from_secs(n);
        assert_eq!(
            seen,
            vec![
                (50, vec![Alarm::IdleWarning { left: s(10) }]),
                (100, vec![Alarm::IdleWarning { left: s(10) }]),
                (
                    110,
                    vec![Alarm::DurationWarning {
                        max: s(120),
                        left: s(10)
                    }]
                ),
                (120, vec![Alarm::End(End::MaxDuration)]),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pongs_keep_the_transport_alive_but_not_the_profile() {
        let mut clock = Clock::new(
            ClockSettings {
                transport_idle: Duration::from_secs(20),
                idle: None,
                max_duration: None,
                token_left: Some(Duration::from_secs(95)),
                ..settings()
            },
            Instant::now(),
        );
        // A pong every 10 s keeps the transport open until the token expires.
        let mut ended = None;
        while ended.is_none() {
            let sleep = tokio::time::sleep(Duration::from_secs(10));
            tokio::select! {
                () = sleep => clock.frame(Instant::now()),
                (at, alarms) = next(&mut clock) => {
                    if let Some(Alarm::End(e)) = alarms.into_iter().find(|a| matches!(a, Alarm::End(_))) {
                        ended = Some((at.as_secs(), e));
                    }
                }
            }
        }
        assert_eq!(ended, Some((95, End::TokenExpired)));
        // Without frames, the transport timeout ends it.
        let quiet = ClockSettings {
            idle: None,
            max_duration: None,
            upstream_ping: Duration::from_secs(1000),
            ..settings()
        };
        let mut clock = Clock::new(quiet, Instant::now());
        advance(Duration::from_secs(299)).await;
        assert_eq!(clock.due(Instant::now()), None);
        clock.frame(Instant::now());
        advance(Duration::from_secs(299)).await;
        assert_eq!(clock.due(Instant::now()), None);
        advance(Duration::from_secs(1)).await;
        assert_eq!(clock.due(Instant::now()), Some(Alarm::End(End::IdleTimeout)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_shorter_than_the_warning_is_not_warned() {
        let mut clock = Clock::new(
            ClockSettings {
                idle: None,
                max_duration: Some(Duration::from_secs(5)),
                ..settings()
            },
            Instant::now(),
        );
        assert_eq!(
            next(&mut clock).await,
            (Duration::from_secs(5), vec![Alarm::End(End::MaxDuration)])
        );
    }
}
