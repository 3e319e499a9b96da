//! The one shape every detector has: a watch, restarted with the default
//! backoff, whose events are either judged one object at a time
//! ([`objects`]) or kept in a reflector store and judged as a whole
//! ([`views`], [`judged`]) by a [`Check`].
//!
//! Init events mean the same everywhere. kube-runtime's watcher (re)lists
//! with `Init`, one `InitApply` per listed object and `InitDone`, and a
//! reflector store keeps showing the *previous* state until `InitDone` swaps
//! the new list in. So a whole-store judgement made on `Init` or `InitApply`
//! judges a stale or (on the first list) empty store: an empty Service, zero
//! ready pods. [`views`] therefore yields the store only when it is complete:
//! at `InitDone` and after every `Apply` or `Delete`. One object at a time
//! there is no such trap: [`objects`] yields every object as listed
//! (`InitApply`) and as changed (`Apply`), which is what
//! [`WatchStreamExt::applied_objects`] does.
//!
//! [`Check`] follows kube-runtime's [`wait::Condition`](kube::runtime::wait::Condition)
//! (composable with [`Check::and`], [`Check::or`], [`Check::not`]) but judges
//! the whole store and says why in a [`Verdict`], because breakfix reports
//! what is unmet ("deployment/web -n shop: 1/2 ready"), not only that it is.

use std::fmt;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};

/// What a watch's events are: kube-runtime's watcher events or its error.
pub type Events<K> = BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>;

/// The bounds a watched object type meets (those of kube-runtime's reflector).
pub trait Watched:
    Resource<DynamicType: Default + Eq + std::hash::Hash + Clone>
    + Clone
    + fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType: Default + Eq + std::hash::Hash + Clone>
        + Clone
        + fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// The events of a watch on `api` with `config`, restarted with
/// kube-runtime's default backoff when the API server drops it.
pub fn events<K: Watched>(api: Api<K>, config: watcher::Config) -> Events<K> {
    watcher(api, config).default_backoff().boxed()
}

/// Every object of `events` as listed and as changed (deletions are left
/// out; a detector that needs them reads [`events`]).
pub fn objects<K: Watched>(events: Events<K>) -> BoxStream<'static, Result<K, watcher::Error>> {
    events.applied_objects().boxed()
}

/// Whether a reflector store fed `event` holds a complete view of the
/// watched objects: false mid-list (`Init`, `InitApply`), when the store
/// still shows the state before the list.
pub fn completes_view<K>(event: &watcher::Event<K>) -> bool {
    !matches!(event, watcher::Event::Init | watcher::Event::InitApply(_))
}

/// The watched objects each time they form a complete view: when the
/// (re)list is done and after every change. See the module docs for why
/// never mid-list.
pub fn views<K: Watched>(
    events: Events<K>,
) -> BoxStream<'static, Result<Vec<Arc<K>>, watcher::Error>> {
    let (reader, writer) = reflector::store::<K>();
    complete_views(reader, reflector::reflector(writer, events))
}

fn complete_views<K: Watched>(
    reader: Store<K>,
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
) -> BoxStream<'static, Result<Vec<Arc<K>>, watcher::Error>> {
    events
        .try_filter_map(move |event| {
            let view = completes_view(&event).then(|| reader.state());
            futures::future::ready(Ok(view))
        })
        .boxed()
}

/// `check`'s verdict on every complete view of `events`.
pub fn judged<K: Watched, C: Check<K>>(
    events: Events<K>,
    check: C,
) -> BoxStream<'static, Result<Verdict, watcher::Error>> {
    views(events).map_ok(move |view| check.judge(&view)).boxed()
}

/// Whether a [`Check`] holds, and why (or why not) in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the check holds.
    pub met: bool,
    /// What was seen, e.g. `1/2 ready`: the reason when unmet.
    pub why: String,
}

impl Verdict {
    /// A verdict that holds.
    pub fn met(why: impl Into<String>) -> Self {
        Self {
            met: true,
            why: why.into(),
        }
    }

    /// A verdict that does not hold, because of `why`.
    pub fn unmet(why: impl Into<String>) -> Self {
        Self {
            met: false,
            why: why.into(),
        }
    }
}

impl From<(bool, String)> for Verdict {
    fn from((met, why): (bool, String)) -> Self {
        Self { met, why }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

/// Something that holds or not of the watched objects of one kind, with the
/// reason, in the spirit of kube-runtime's `wait::Condition`. Closures
/// `Fn(&[Arc<K>]) -> Verdict` are checks.
pub trait Check<K>: Send + 'static {
    /// The verdict on `objects`, the complete view of the watch.
    fn judge(&self, objects: &[Arc<K>]) -> Verdict;

    /// Holds when both hold; the reason names what is unmet (or both when met).
    fn and<O: Check<K>>(self, other: O) -> And<Self, O>
    where
        Self: Sized,
    {
        And(self, other)
    }

    /// Holds when either holds; the reason names what is met (or both when unmet).
    fn or<O: Check<K>>(self, other: O) -> Or<Self, O>
    where
        Self: Sized,
    {
        Or(self, other)
    }

    /// Holds when `self` does not; the reason is `self`'s.
    fn not(self) -> Not<Self>
    where
        Self: Sized,
    {
        Not(self)
    }

    /// The same check, its reason prefixed with `label: ` (what is checked).
    fn labelled(self, label: impl fmt::Display) -> Labelled<Self>
    where
        Self: Sized,
    {
        Labelled(self, label.to_string())
    }
}

impl<K, F> Check<K> for F
where
    F: Fn(&[Arc<K>]) -> Verdict + Send + 'static,
{
    fn judge(&self, objects: &[Arc<K>]) -> Verdict {
        self(objects)
    }
}

/// A check on the one object a watch by name sees: `verdict` on it, unmet
/// with `not found` while there is none.
pub fn named<K: 'static>(verdict: fn(&K) -> Verdict) -> impl Check<K> {
    move |objects: &[Arc<K>]| match objects.first() {
        Some(object) => verdict(object),
        None => Verdict::unmet("not found"),
    }
}

/// See [`Check::and`].
#[derive(Debug, Clone)]
pub struct And<A, B>(A, B);

impl<K, A: Check<K>, B: Check<K>> Check<K> for And<A, B> {
    fn judge(&self, objects: &[Arc<K>]) -> Verdict {
        let (a, b) = (self.0.judge(objects), self.1.judge(objects));
        match (a.met, b.met) {
            (true, true) => Verdict::met(format!("{a}; {b}")),
            (false, true) => a,
            (true, false) => b,
            (false, false) => Verdict::unmet(format!("{a}; {b}")),
        }
    }
}

/// See [`Check::or`].
#[derive(Debug, Clone)]
pub struct Or<A, B>(A, B);

impl<K, A: Check<K>, B: Check<K>> Check<K> for Or<A, B> {
    fn judge(&self, objects: &[Arc<K>]) -> Verdict {
        let (a, b) = (self.0.judge(objects), self.1.judge(objects));
        match (a.met, b.met) {
            (true, _) => a,
            (false, true) => b,
            (false, false) => Verdict::unmet(format!("{a}; {b}")),
        }
    }
}

/// See [`Check::not`].
#[derive(Debug, Clone)]
pub struct Not<A>(A);

impl<K, A: Check<K>> Check<K> for Not<A> {
    fn judge(&self, objects: &[Arc<K>]) -> Verdict {
        let v = self.0.judge(objects);
        Verdict { met: !v.met, ..v }
    }
}

/// See [`Check::labelled`].
#[derive(Debug, Clone)]
pub struct Labelled<A>(A, String);

impl<K, A: Check<K>> Check<K> for Labelled<A> {
    fn judge(&self, objects: &[Arc<K>]) -> Verdict {
        let v = self.0.judge(objects);
        Verdict {
            why: format!("{}: {}", self.1, v.why),
            ..v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use rstest::rstest;

    fn pod(name: &str) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name, "namespace": "shop"}}))
            .expect("a pod")
    }

    /// A watch's events written as `init`, `+a` (InitApply), `done`,
    /// `a` (Apply) and `-a` (Delete).
    fn event(word: &str) -> watcher::Event<Pod> {
        match word {
            "init" => watcher::Event::Init,
            "done" => watcher::Event::InitDone,
            w if w.starts_with('+') => watcher::Event::InitApply(pod(&w[1..])),
            w if w.starts_with('-') => watcher::Event::Delete(pod(&w[1..])),
            w => watcher::Event::Apply(pod(w)),
        }
    }

    fn names(view: &[Arc<Pod>]) -> String {
        let mut names: Vec<String> = view
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
        names.sort();
        names.join(",")
    }

    /// The views a reflector fed `script` yields, one string per view.
    async fn views_of(script: &str) -> Vec<String> {
        let events: Vec<Result<watcher::Event<Pod>, watcher::Error>> =
            script.split_whitespace().map(|w| Ok(event(w))).collect();
        let (reader, writer) = reflector::store::<Pod>();
        let stream = reflector::reflector(writer, futures::stream::iter(events));
        complete_views(reader, stream)
            .map_ok(|v| names(&v))
            .try_collect()
            .await
            .expect("no watch error")
    }

    #[rstest]
    #[case::first_list_judged_once_done("init +a +b done", &["a,b"])]
    #[case::empty_list_is_a_view("init done", &[""])]
    #[case::changes_after_the_list("init +a done b -a", &["a", "a,b", "b"])]
    #[case::relist_judged_when_done_not_on_the_stale_store(
        "init +a done init +b +c done",
        &["a", "b,c"]
    )]
    #[tokio::test]
    async fn a_view_is_judged_only_when_complete(#[case] script: &str, #[case] want: &[&str]) {
        assert_eq!(views_of(script).await, want);
    }

    fn count_at_least(min: usize) -> impl Check<Pod> {
        move |pods: &[Arc<Pod>]| {
            let n = pods.len();
            Verdict::from((n >= min, format!("{n} pods")))
        }
    }

    fn is_named(name: &'static str) -> impl Check<Pod> {
        move |pods: &[Arc<Pod>]| {
            let seen = names(pods);
            Verdict::from((seen == name, format!("named {seen}")))
        }
    }

    #[rstest]
    #[case::and_met(count_at_least(1).and(is_named("a")).boxed(), true, "1 pods; named a")]
    #[case::and_names_only_the_unmet(count_at_least(2).and(is_named("a")).boxed(), false, "1 pods")]
    #[case::and_both_unmet(count_at_least(2).and(is_named("b")).boxed(), false, "1 pods; named a")]
    #[case::or_names_the_met(count_at_least(2).or(is_named("a")).boxed(), true, "named a")]
    #[case::or_both_unmet(count_at_least(2).or(is_named("b")).boxed(), false, "1 pods; named a")]
    #[case::not_keeps_the_reason(count_at_least(1).not().boxed(), false, "1 pods")]
    #[case::labelled(count_at_least(2).labelled("pods -l app=web").boxed(), false, "pods -l app=web: 1 pods")]
    fn checks_compose_and_say_why(
        #[case] check: Box<dyn Check<Pod>>,
        #[case] met: bool,
        #[case] why: &str,
    ) {
        let verdict = check.judge(&[Arc::new(pod("a"))]);
        assert_eq!((verdict.met, verdict.why.as_str()), (met, why));
    }

    #[rstest]
    #[case::found(&["a"], true, "a is here")]
    #[case::not_found(&[], false, "not found")]
    fn a_named_check_is_unmet_until_its_object_is_seen(
        #[case] pods: &[&str],
        #[case] met: bool,
        #[case] why: &str,
    ) {
        let check = named::<Pod>(|p| {
            Verdict::met(format!(
                "{} is here",
                p.metadata.name.as_deref().unwrap_or_default()
            ))
        });
        let view: Vec<Arc<Pod>> = pods.iter().map(|n| Arc::new(pod(n))).collect();
        assert_eq!(
            check.judge(&view),
            Verdict {
                met,
                why: why.into()
            }
        );
    }

    trait Boxed: Check<Pod> + Sized {
        fn boxed(self) -> Box<dyn Check<Pod>> {
            Box::new(self)
        }
    }
    impl<C: Check<Pod>> Boxed for C {}
}
