//! Conditions on a Kubernetes object in CEL, the Common Expression Language,
//! as Kubernetes itself writes them in ValidatingAdmissionPolicies and CRD
//! validation rules: the object is `object`, read as its JSON.
//!
//! ```text
//! object.status.readyReplicas >= 2
//! object.status.conditions.exists(c, c.type == "Available" && c.status == "True")
//! has(object.status.readyReplicas) && object.status.readyReplicas >= object.spec.replicas
//! object.metadata.labels["app.kubernetes.io/name"] == "web"
//! ```
//!
//! Parsing and evaluation are the `cel` crate's (cel-rust). What breakfix
//! adds: a check, when the file is read, that the expression reads only
//! `object` and is a condition (not a number or a string), with the
//! position of the problem; the conversion of the watched object; and, for
//! reports, the values the expression read (`object.status.readyReplicas =
//! 1`).
//!
//! As in Kubernetes, a field that is not set is an error to read, not
//! `null`: Kubernetes leaves out `readyReplicas` when no replica is ready,
//! so guard optional fields with `has()`. An expression that fails to
//! evaluate, or reads an object that does not exist, does not hold; the
//! reason goes with the values into the report.

use std::fmt;
use std::sync::{Arc, OnceLock};

use ::cel::common::ast::{Expr, IdedExpr, LiteralValue};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The name under which an expression reads the watched object.
pub const OBJECT: &str = "object";

/// Longest value shown by [`CelExpr::explain`]; longer ones are cut.
const MAX_SHOWN: usize = 160;

/// Why an expression was refused: where in the expression (1-based line and
/// column), what is wrong, and how to fix it when there is more to say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CelError {
    /// 1-based line within the expression.
    pub line: usize,
    /// 1-based column within that line.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// A compiled CEL condition with its source text.
#[derive(Clone)]
pub struct CelExpr {
    text: String,
    program: Arc<::cel::Program>,
}

impl fmt::Debug for CelExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CelExpr").field(&self.text).finish()
    }
}

impl PartialEq for CelExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for CelExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The outcome of evaluating a condition on one state of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Whether the condition holds; an expression that fails does not.
    pub holds: bool,
    /// Why the expression could not be evaluated, if it could not.
    pub error: Option<String>,
}

/// The standard environment, built once: its functions and macros.
fn env() -> &'static Arc<::cel::Env> {
    static ENV: OnceLock<Arc<::cel::Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(::cel::Env::stdlib()))
}

impl CelExpr {
    /// Compiles `text` and checks that it is a condition on `object`.
    ///
    /// # Errors
    ///
    /// [`CelError`] at the first syntax error, the first name other than
    /// `object` (and the variables of macros such as `exists`), a function
    /// CEL does not have under the name used, or an expression that is
    /// plainly a value rather than true or false.
    pub fn parse(text: &str) -> Result<Self, CelError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(CelError {
                line: 1,
                column: 1,
                message: "empty expression".into(),
                help: Some(example_help()),
            });
        }
        let program = env().compile(text).map_err(|errors| {
            let first = errors.errors.first();
            let (line, column) = first.map_or((1, 1), |e| {
                (e.pos.0.max(1) as usize, e.pos.1.max(1) as usize)
            });
            CelError {
                line,
                column,
                message: first.map_or_else(
                    || "not a CEL expression".to_string(),
                    |e| e.msg.trim_start_matches("Syntax error: ").to_string(),
                ),
                help: Some(migration_help(text).unwrap_or_else(example_help)),
            }
        })?;
        let check = Checker {
            source: text,
            program: &program,
        };
        check.names(program.expression(), &mut Vec::new())?;
        check.is_condition(program.expression())?;
        Ok(Self {
            text: text.to_string(),
            program: Arc::new(program),
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Evaluates the condition on `object` (the object as JSON; `Null` when
    /// it does not exist).
    pub fn evaluate(&self, object: &Value) -> Evaluation {
        let mut context = ::cel::Context::with_env(env().clone());
        if let Err(e) = context.add_variable(OBJECT, object.clone()) {
            return Evaluation {
                holds: false,
                error: Some(format!("cannot read the object: {e}")),
            };
        }
        match self.program.execute(&context) {
            Ok(::cel::Value::Bool(b)) => Evaluation {
                holds: b,
                error: None,
            },
            Ok(other) => Evaluation {
                holds: false,
                error: Some(format!(
                    "evaluates to {}, not true or false",
                    describe_value(&other)
                )),
            },
            Err(_) if object.is_null() => Evaluation {
                holds: false,
                error: Some("the object does not exist".into()),
            },
            Err(e) => Evaluation {
                holds: false,
                error: Some(describe_error(&e)),
            },
        }
    }

    /// Whether the condition holds on `object`.
    pub fn holds(&self, object: &Value) -> bool {
        self.evaluate(object).holds
    }

    /// Every field path of `object` the expression reads, in order, e.g.
    /// `object.status.readyReplicas`, `object.metadata.labels["app"]`.
    pub fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_paths(self.program.expression(), &mut out);
        let mut texts: Vec<String> = Vec::new();
        for p in out {
            let text = p.to_string();
            if !texts.contains(&text) {
                texts.push(text);
            }
        }
        texts
    }

    /// `path = value` for each path the expression reads, e.g.
    /// `object.status.readyReplicas = 1, object.spec.replicas = 2`: what a
    /// report shows next to a verdict.
    pub fn explain(&self, object: &Value) -> String {
        if object.is_null() {
            return "the object does not exist".into();
        }
        let mut out = Vec::new();
        collect_paths(self.program.expression(), &mut out);
        let mut lines: Vec<String> = Vec::new();
        for path in out {
            let line = match path.lookup(object) {
                Some(v) => format!("{path} = {}", shorten(&v.to_string())),
                None => format!("{path} is not set"),
            };
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        lines.join(", ")
    }
}

/// One step of a path into the object.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Key(String),
    Index(u64),
}

/// A path rooted at `object`: fields, map keys and list indices.
#[derive(Debug, Clone, PartialEq)]
struct Path(Vec<Step>);

impl Path {
    /// The path of `e` when it is one: `object`, then selects and constant
    /// indices.
    fn of(e: &IdedExpr) -> Option<Self> {
        match &e.expr {
            Expr::Ident(name) if name == OBJECT => Some(Self(Vec::new())),
            Expr::Select(s) => {
                let mut p = Self::of(&s.operand)?;
                p.0.push(Step::Field(s.field.clone()));
                Some(p)
            }
            Expr::Call(c) if c.func_name == "_[_]" && c.target.is_none() && c.args.len() == 2 => {
                let mut p = Self::of(&c.args[0])?;
                let step = match &c.args[1].expr {
                    Expr::Literal(LiteralValue::String(s)) => Step::Key(s.inner().to_string()),
                    Expr::Literal(LiteralValue::Int(i)) => {
                        Step::Index(u64::try_from(*i.inner()).ok()?)
                    }
                    Expr::Literal(LiteralValue::UInt(u)) => Step::Index(*u.inner()),
                    _ => return None,
                };
                p.0.push(step);
                Some(p)
            }
            _ => None,
        }
    }

    fn lookup<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        let mut at = root;
        for step in &self.0 {
            at = match step {
                Step::Field(k) | Step::Key(k) => at.get(k)?,
                Step::Index(i) => at.get(usize::try_from(*i).ok()?)?,
            };
        }
        Some(at)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(OBJECT)?;
        for step in &self.0 {
            match step {
                Step::Field(k) => write!(f, ".{k}")?,
                Step::Key(k) => write!(f, "[{}]", Value::String(k.clone()))?,
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// The longest paths into `object` under `e`, in order of appearance.
fn collect_paths(e: &IdedExpr, out: &mut Vec<Path>) {
    if let Some(p) = Path::of(e) {
        out.push(p);
        return;
    }
    for child in children(e) {
        collect_paths(child, out);
    }
}

/// The sub-expressions of `e`.
fn children(e: &IdedExpr) -> Vec<&IdedExpr> {
    match &e.expr {
        Expr::Call(c) => c.target.iter().map(|t| &**t).chain(c.args.iter()).collect(),
        Expr::Select(s) => vec![&*s.operand],
        Expr::List(l) => l.elements.iter().collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::Map(m) => m
            .entries
            .iter()
            .flat_map(|entry| match &entry.expr {
                ::cel::common::ast::EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
                ::cel::common::ast::EntryExpr::StructField(sf) => vec![&sf.value],
            })
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter()
            .flat_map(|entry| match &entry.expr {
                ::cel::common::ast::EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
                ::cel::common::ast::EntryExpr::StructField(sf) => vec![&sf.value],
            })
            .collect(),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

/// Names CEL itself defines: types, usable as values (`type(x) == int`).
const TYPE_NAMES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "int",
    "uint",
    "string",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
];

/// The checks made when an expression is read.
struct Checker<'a> {
    source: &'a str,
    program: &'a ::cel::Program,
}

impl Checker<'_> {
    /// An error at `e`'s position in the source.
    fn error(&self, e: &IdedExpr, message: String, help: Option<String>) -> CelError {
        let (line, column) = self
            .program
            .source_info()
            .offset_for(e.id)
            .map_or((1, 1), |(start, _)| {
                line_column(self.source, start as usize)
            });
        CelError {
            line,
            column,
            message,
            help,
        }
    }

    /// Every identifier is `object`, a type name, or a variable bound by an
    /// enclosing macro (`c` in `exists(c, …)`); every function is one CEL
    /// has under that name.
    fn names(&self, e: &IdedExpr, bound: &mut Vec<String>) -> Result<(), CelError> {
        match &e.expr {
            Expr::Ident(name) => {
                if name == OBJECT
                    || TYPE_NAMES.contains(&name.as_str())
                    || bound.iter().any(|b| b == name)
                {
                    return Ok(());
                }
                let help = if let Some(field) = name.strip_prefix('.') {
                    format!(
                        "a condition reads the object as `object`: write `object.{field}…` (conditions are CEL, as in Kubernetes' validation rules)"
                    )
                } else {
                    format!(
                        "a condition reads the watched object as `object`, e.g. `object.{name}`"
                    )
                };
                let mut error = self.error(e, format!("unknown name `{name}`"), Some(help));
                if name.starts_with('.') {
                    // CEL places a leading-dot name at its first letter.
                    error.column = error.column.saturating_sub(1).max(1);
                }
                Err(error)
            }
            Expr::Call(c) => {
                let hint = match (c.func_name.as_str(), c.target.is_some(), c.args.len()) {
                    ("len", _, _) => {
                        Some("CEL counts with `size(…)`, e.g. `size(object.subsets) >= 1`")
                    }
                    ("exists", false, 1) => Some(
                        "test whether a field is set with `has(…)`, e.g. `has(object.metadata.deletionTimestamp)`",
                    ),
                    _ => None,
                };
                if let Some(help) = hint {
                    let mut error = self.error(
                        e,
                        format!(
                            "there is no function `{}` taking these arguments",
                            c.func_name
                        ),
                        Some(help.to_string()),
                    );
                    // CEL places a call at its parenthesis; point at the name.
                    error.column = error.column.saturating_sub(c.func_name.len()).max(1);
                    return Err(error);
                }
                for child in children(e) {
                    self.names(child, bound)?;
                }
                Ok(())
            }
            Expr::Comprehension(c) => {
                self.names(&c.iter_range, bound)?;
                self.names(&c.accu_init, bound)?;
                let depth = bound.len();
                bound.push(c.iter_var.clone());
                bound.extend(c.iter_var2.clone());
                bound.push(c.accu_var.clone());
                let inner = [&c.loop_cond, &c.loop_step, &c.result]
                    .into_iter()
                    .try_for_each(|x| self.names(x, bound));
                bound.truncate(depth);
                inner
            }
            _ => children(e)
                .into_iter()
                .try_for_each(|child| self.names(child, bound)),
        }
    }

    /// Refuses an expression that can only be a value: a number, a string,
    /// arithmetic, `size(…)`, a list or a map.
    fn is_condition(&self, e: &IdedExpr) -> Result<(), CelError> {
        let what = match &e.expr {
            Expr::Literal(LiteralValue::Boolean(_)) => None,
            Expr::Literal(LiteralValue::Null) => Some("null"),
            Expr::Literal(_) => Some("a constant"),
            Expr::List(_) => Some("a list"),
            Expr::Map(_) | Expr::Struct(_) => Some("a map"),
            Expr::Call(c) => match c.func_name.as_str() {
                "_+_" | "_-_" | "_*_" | "_/_" | "_%_" | "-_" => Some("arithmetic"),
                "size" | "string" | "int" | "uint" | "double" | "type" => Some("a value"),
                _ => None,
            },
            _ => None,
        };
        match what {
            Some(what) => Err(self.error(
                e,
                format!("the expression is {what}, not a condition that is true or false"),
                Some(example_help()),
            )),
            None => Ok(()),
        }
    }
}

/// 1-based line and column of byte `offset` in `source`.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn example_help() -> String {
    "write a CEL condition on `object`, e.g. `object.status.readyReplicas >= 1` or `object.status.conditions.exists(c, c.type == \"Available\" && c.status == \"True\")`".into()
}

/// Help for an expression written in the path syntax breakfix used before
/// CEL (`.status.x`, `[type=Ready]`, `len(…)`, `exists(…)`).
fn migration_help(text: &str) -> Option<String> {
    let t = text.trim_start();
    if t.contains("[type=") || t.contains("[name=") {
        Some("pick a list item with `exists`, e.g. `object.status.conditions.exists(c, c.type == \"Ready\" && c.status == \"True\")` (conditions are CEL, as in Kubernetes' validation rules)".into())
    } else if t.starts_with('.') {
        Some("a condition reads the object as `object`: write `object.status…` (conditions are CEL, as in Kubernetes' validation rules)".into())
    } else {
        None
    }
}

/// A CEL value for a message: its type and, when short, the value.
fn describe_value(v: &::cel::Value) -> String {
    match v {
        ::cel::Value::Int(i) => format!("the int {i}"),
        ::cel::Value::UInt(u) => format!("the uint {u}"),
        ::cel::Value::Float(f) => format!("the double {f}"),
        ::cel::Value::String(s) => format!(
            "the string {}",
            shorten(&Value::String(s.to_string()).to_string())
        ),
        ::cel::Value::Null => "null".into(),
        ::cel::Value::List(l) => format!("a list of {}", l.len()),
        ::cel::Value::Map(_) => "a map".into(),
        _ => "a value".into(),
    }
}

/// An evaluation error, in words.
fn describe_error(e: &::cel::ExecutionError) -> String {
    match e {
        ::cel::ExecutionError::NoSuchKey(k) => {
            format!("`{k}` is not set (guard optional fields with has())")
        }
        other => other.to_string(),
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_SHOWN {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX_SHOWN).collect();
        format!("{cut}…")
    }
}

impl Serialize for CelExpr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for CelExpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CelExpr::parse(&text).map_err(|e| {
            let line = text.lines().nth(e.line - 1).unwrap_or(&text);
            let mut message =
                super::diagnostic::within_value(line, e.column, &format!("CEL: {}", e.message));
            if let Some(help) = e.help {
                message.push_str(&format!(" ({help})"));
            }
            serde::de::Error::custom(message)
        })
    }
}

impl JsonSchema for CelExpr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CelCondition".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A CEL condition on the watched object, read as `object` (as in Kubernetes' ValidatingAdmissionPolicy and CRD validation rules); guard optional fields with has().",
            "examples": [
                "object.status.readyReplicas >= 2",
                "object.status.conditions.exists(c, c.type == \"Available\" && c.status == \"True\")"
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn deployment(ready: Option<u32>, available: &str) -> Value {
        let mut status = json!({
            "replicas": 2,
            "conditions": [
                {"type": "Progressing", "status": "True"},
                {"type": "Available", "status": available},
            ],
        });
        if let Some(r) = ready {
            status["readyReplicas"] = r.into();
        }
        json!({
            "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 2},
            "status": status,
        })
    }

    #[rstest]
    #[case::at_least("object.status.readyReplicas >= 2", deployment(Some(2), "True"), true)]
    #[case::below("object.status.readyReplicas >= 2", deployment(Some(1), "True"), false)]
    #[case::unset_field_does_not_hold(
        "object.status.readyReplicas >= 2",
        deployment(None, "True"),
        false
    )]
    #[case::guarded(
        "!has(object.status.readyReplicas) || object.status.readyReplicas < 2",
        deployment(None, "True"),
        true
    )]
    #[case::exists_available(
        r#"object.status.conditions.exists(c, c.type == "Available" && c.status == "True")"#,
        deployment(Some(2), "True"),
        true
    )]
    #[case::not_available(
        r#"object.status.conditions.exists(c, c.type == "Available" && c.status == "True")"#,
        deployment(Some(2), "False"),
        false
    )]
    #[case::field_against_field(
        "object.status.readyReplicas == object.spec.replicas",
        deployment(Some(2), "True"),
        true
    )]
    #[case::label_key_with_dots(
        r#"object.metadata.labels["app.kubernetes.io/name"] == "web""#,
        deployment(Some(2), "True"),
        true
    )]
    #[case::doubles_and_ints(
        "object.status.readyReplicas > 1.5",
        deployment(Some(2), "True"),
        true
    )]
    #[case::size(
        "size(object.status.conditions) == 2",
        deployment(Some(2), "True"),
        true
    )]
    #[case::missing_object("object.status.readyReplicas >= 0", Value::Null, false)]
    #[case::absence_is_a_condition("object == null", Value::Null, true)]
    fn conditions_hold_as_kubernetes_would_judge_them(
        #[case] text: &str,
        #[case] object: Value,
        #[case] holds: bool,
    ) {
        let expr = CelExpr::parse(text).expect("a valid expression");
        assert_eq!(expr.holds(&object), holds, "{text} on {object}");
    }

    #[test]
    fn an_unset_field_says_so() {
        let expr = CelExpr::parse("object.status.readyReplicas >= 2").expect("valid");
        let e = expr.evaluate(&deployment(None, "True"));
        assert_eq!(
            e.error.as_deref(),
            Some("`readyReplicas` is not set (guard optional fields with has())")
        );
        assert_eq!(
            expr.evaluate(&Value::Null).error.as_deref(),
            Some("the object does not exist")
        );
    }

    #[test]
    fn a_value_that_is_not_a_condition_at_run_time_is_reported() {
        let expr = CelExpr::parse("object.status.readyReplicas").expect("valid");
        let e = expr.evaluate(&deployment(Some(2), "True"));
        assert!(!e.holds);
        assert_eq!(
            e.error.as_deref(),
            Some("evaluates to the uint 2, not true or false")
        );
    }

    #[rstest]
    #[case::syntax("object.status.readyReplicas >== 2", (1, 31), "token recognition error")]
    #[case::second_line("object.status.readyReplicas >= 1 &&\n  object.spec.replicas >= )", (2, 27), "mismatched input ')'")]
    #[case::old_path_syntax(".status.readyReplicas >= 2", (1, 1), "unknown name `.status`")]
    #[case::old_selector(".status.conditions[type=Available].status == \"True\"", (1, 24), "token recognition error")]
    #[case::other_name("status.readyReplicas >= 2", (1, 1), "unknown name `status`")]
    #[case::old_len("len(object.subsets) >= 1", (1, 1), "no function `len`")]
    #[case::old_exists("exists(object.metadata.deletionTimestamp)", (1, 1), "no function `exists`")]
    #[case::a_number("object.status.readyReplicas + 1", (1, 29), "arithmetic, not a condition")]
    #[case::a_size("size(object.status.conditions)", (1, 5), "a value, not a condition")]
    #[case::empty("  ", (1, 1), "empty expression")]
    fn bad_expressions_are_refused_where_the_problem_is(
        #[case] text: &str,
        #[case] at: (usize, usize),
        #[case] says: &str,
    ) {
        let e = CelExpr::parse(text).expect_err("refused");
        assert_eq!((e.line, e.column), at, "{e:?}");
        assert!(e.message.contains(says), "{e:?}");
        assert!(e.help.is_some(), "{e:?}");
    }

    #[test]
    fn macro_variables_are_names_only_inside_the_macro() {
        assert!(CelExpr::parse("object.spec.containers.all(c, has(c.image))").is_ok());
        let e = CelExpr::parse("object.spec.containers.all(c, has(c.image)) && c.x")
            .expect_err("c is unbound outside");
        assert!(e.message.contains("unknown name `c`"), "{e:?}");
    }

    #[test]
    fn explain_shows_what_the_expression_read() {
        let expr = CelExpr::parse(
            r#"has(object.status.readyReplicas) && object.status.readyReplicas >= object.spec.replicas && object.metadata.labels["app.kubernetes.io/name"] == "web""#,
        )
        .expect("valid");
        assert_eq!(
            expr.explain(&deployment(Some(1), "True")),
            r#"object.status.readyReplicas = 1, object.spec.replicas = 2, object.metadata.labels["app.kubernetes.io/name"] = "web""#
        );
        assert_eq!(
            expr.explain(&deployment(None, "True")),
            r#"object.status.readyReplicas is not set, object.spec.replicas = 2, object.metadata.labels["app.kubernetes.io/name"] = "web""#
        );
        assert_eq!(expr.explain(&Value::Null), "the object does not exist");
    }

    #[test]
    fn round_trips_as_its_text() {
        let expr: CelExpr =
            serde_json::from_value(json!("object.status.readyReplicas >= 1")).expect("valid");
        assert_eq!(
            serde_json::to_value(&expr).expect("serializes"),
            json!("object.status.readyReplicas >= 1")
        );
        let err = serde_json::from_value::<CelExpr>(json!(".status.x >= 1")).expect_err("refused");
        assert!(
            err.to_string()
                .starts_with("`.status.x >= 1`, column 1: CEL: unknown name"),
            "{err}"
        );
    }
}
