//! A small expression language over one Kubernetes object, for `condition`
//! SLOs: users state their own signals and objectives as a field path
//! compared with a value, or a few of those combined.
//!
//! Grammar (whitespace between tokens is ignored):
//!
//! ```text
//! expr    := or
//! or      := and ( "||" and )*
//! and     := not ( "&&" not )*
//! not     := "!" not | compare
//! compare := operand ( ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) operand )?
//! operand := path | number | string | "true" | "false" | "null"
//!          | "len(" path ")" | "exists(" path ")" | "(" expr ")"
//! path    := "." | ( "." name | "[" digits "]" | "[" name "=" scalar "]" )+
//! name    := [A-Za-z_] [A-Za-z0-9_-]*
//! scalar  := string | number | name          (inside a selector, a bare name is a string)
//! string  := '"' … '"' | "'" … "'"           (backslash escapes the quote and itself)
//! number  := "-"? digits ( "." digits )?
//! ```
//!
//! Paths walk the object as JSON: `.status.readyReplicas`,
//! `.spec.template.spec.containers[0].image`, and `[key=value]` picks the
//! first list element whose `key` equals `value`, the usual way to reach a
//! condition: `.status.conditions[type=Available].status == "True"`. A path
//! that leads nowhere is `null`.
//!
//! Comparisons: numbers numerically, strings lexicographically, booleans
//! and null by equality. Values of different types are never equal and
//! never ordered (so `<`, `>` … are false). `len` counts list items, map
//! keys or string characters (null: 0). An operand used alone is true
//! unless it is `false`, `null`, `0` or `""`.

use std::cmp::Ordering;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Why an expression was refused; `column` is 1-based within the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {column}")]
pub struct ExprError {
    pub column: usize,
    pub message: String,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    /// `[key=value]`: the first list element whose `key` equals `value`.
    Select(String, Value),
}

/// A field path such as `.status.conditions[type=Ready].status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    steps: Vec<Step>,
    text: String,
}

impl Path {
    /// The value at this path in `root` (`Null` when it leads nowhere).
    pub fn lookup<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        let mut at = root;
        for step in &self.steps {
            at = match step {
                Step::Field(name) => at.get(name)?,
                Step::Index(i) => at.get(*i)?,
                Step::Select(key, want) => at
                    .as_array()?
                    .iter()
                    .find(|item| item.get(key).is_some_and(|v| loosely_equal(v, want)))?,
            };
        }
        Some(at)
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Or(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Compare(Box<Node>, CmpOp, Box<Node>),
    Path(Path),
    Literal(Value),
    Len(Path),
    Exists(Path),
}

/// A parsed expression; keeps its source text for reports and round trips.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    root: Node,
    text: String,
}

impl Expr {
    /// Parses `text` (see the module documentation for the grammar).
    pub fn parse(text: &str) -> Result<Self, ExprError> {
        let mut p = Parser { src: text, pos: 0 };
        p.skip_ws();
        if p.at_end() {
            return Err(p.error("empty expression; write e.g. `.status.readyReplicas >= 1`"));
        }
        let root = p.or()?;
        p.skip_ws();
        if !p.at_end() {
            return Err(p.error(format!(
                "unexpected `{}`; expected an operator (== != < <= > >= && ||) or the end",
                p.rest_preview()
            )));
        }
        Ok(Self {
            root,
            text: text.trim().to_string(),
        })
    }

    /// Whether the expression holds for `object` (the object as JSON; `Null`
    /// when it does not exist).
    pub fn holds(&self, object: &Value) -> bool {
        truthy(&eval(&self.root, object))
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Every path the expression reads, in order of appearance.
    pub fn paths(&self) -> Vec<&Path> {
        let mut out = Vec::new();
        collect_paths(&self.root, &mut out);
        out
    }

    /// `path = value` for each path the expression reads, e.g.
    /// `.status.readyReplicas = 1`: what a report shows next to a verdict.
    pub fn explain(&self, object: &Value) -> String {
        self.paths()
            .iter()
            .map(|p| {
                let v = p.lookup(object).cloned().unwrap_or(Value::Null);
                format!("{} = {}", p.as_str(), v)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn collect_paths<'a>(node: &'a Node, out: &mut Vec<&'a Path>) {
    match node {
        Node::Or(a, b) | Node::And(a, b) | Node::Compare(a, _, b) => {
            collect_paths(a, out);
            collect_paths(b, out);
        }
        Node::Not(a) => collect_paths(a, out),
        Node::Path(p) | Node::Len(p) | Node::Exists(p) => {
            if !out.iter().any(|seen| seen.text == p.text) {
                out.push(p);
            }
        }
        Node::Literal(_) => {}
    }
}

fn eval(node: &Node, object: &Value) -> Value {
    match node {
        Node::Or(a, b) => Value::Bool(truthy(&eval(a, object)) || truthy(&eval(b, object))),
        Node::And(a, b) => Value::Bool(truthy(&eval(a, object)) && truthy(&eval(b, object))),
        Node::Not(a) => Value::Bool(!truthy(&eval(a, object))),
        Node::Compare(a, op, b) => Value::Bool(compare(&eval(a, object), *op, &eval(b, object))),
        Node::Path(p) => p.lookup(object).cloned().unwrap_or(Value::Null),
        Node::Literal(v) => v.clone(),
        Node::Len(p) => {
            let n = match p.lookup(object) {
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(o)) => o.len(),
                Some(Value::String(s)) => s.chars().count(),
                _ => 0,
            };
            Value::from(n)
        }
        Node::Exists(p) => Value::Bool(p.lookup(object).is_some_and(|v| !v.is_null())),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

/// Equality that treats `1` and `1.0` alike (JSON numbers from different sources).
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => order(a, b) == Some(Ordering::Equal),
        _ => a == b,
    }
}

fn compare(a: &Value, op: CmpOp, b: &Value) -> bool {
    match op {
        CmpOp::Eq => loosely_equal(a, b),
        CmpOp::Ne => !loosely_equal(a, b),
        CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
            if a.is_null() || b.is_null() {
                return false;
            }
            match order(a, b) {
                Some(o) => match op {
                    CmpOp::Lt => o == Ordering::Less,
                    CmpOp::Le => o != Ordering::Greater,
                    CmpOp::Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                },
                None => false,
            }
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> ExprError {
        ExprError {
            column: self.src[..self.pos].chars().count() + 1,
            message: message.into(),
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn rest_preview(&self) -> String {
        self.rest().chars().take(12).collect()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Node, ExprError> {
        let mut left = self.and()?;
        while self.eat("||") {
            let right = self.and()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, ExprError> {
        let mut left = self.not()?;
        while self.eat("&&") {
            let right = self.not()?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Node, ExprError> {
        self.skip_ws();
        if self.rest().starts_with('!') && !self.rest().starts_with("!=") {
            self.pos += 1;
            return Ok(Node::Not(Box::new(self.not()?)));
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Node, ExprError> {
        let left = self.operand()?;
        self.skip_ws();
        if self.rest().starts_with('=') && !self.rest().starts_with("==") {
            return Err(self.error("`=` is not an operator; compare with `==`"));
        }
        let op = [
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ]
        .into_iter()
        .find(|(t, _)| self.rest().starts_with(t));
        let Some((token, op)) = op else {
            return Ok(left);
        };
        self.pos += token.len();
        self.skip_ws();
        if self.at_end() {
            return Err(self.error(format!("expected a value after `{token}`")));
        }
        let right = self.operand()?;
        Ok(Node::Compare(Box::new(left), op, Box::new(right)))
    }

    fn operand(&mut self) -> Result<Node, ExprError> {
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(self.error("expected a path, a value or `(`"));
        };
        match c {
            '.' => Ok(Node::Path(self.path()?)),
            '(' => {
                self.pos += 1;
                let inner = self.or()?;
                if !self.eat(")") {
                    return Err(self.error("expected `)`"));
                }
                Ok(inner)
            }
            '"' | '\'' => Ok(Node::Literal(Value::String(self.string()?))),
            '-' | '0'..='9' => Ok(Node::Literal(self.number()?)),
            '=' => Err(self.error("`=` is not an operator; compare with `==`")),
            c if c.is_ascii_alphabetic() => {
                let start = self.pos;
                let word = self.name();
                match word.as_str() {
                    "true" => Ok(Node::Literal(Value::Bool(true))),
                    "false" => Ok(Node::Literal(Value::Bool(false))),
                    "null" => Ok(Node::Literal(Value::Null)),
                    "len" | "exists" => {
                        if !self.eat("(") {
                            return Err(self.error(format!("expected `(` after `{word}`")));
                        }
                        self.skip_ws();
                        let path = self.path()?;
                        if !self.eat(")") {
                            return Err(self.error("expected `)`"));
                        }
                        Ok(if word == "len" {
                            Node::Len(path)
                        } else {
                            Node::Exists(path)
                        })
                    }
                    _ => {
                        self.pos = start;
                        Err(self.error(format!(
                            "`{word}` is not a value; paths start with `.` (`.{word}`), strings are quoted (`\"{word}\"`)"
                        )))
                    }
                }
            }
            other => Err(self.error(format!("unexpected `{other}`"))),
        }
    }

    fn name(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            let ok = if self.pos == start {
                c.is_ascii_alphabetic() || c == '_'
            } else {
                c.is_ascii_alphanumeric() || c == '_' || c == '-'
            };
            if !ok {
                break;
            }
            self.pos += 1;
        }
        self.src[start..self.pos].to_string()
    }

    fn path(&mut self) -> Result<Path, ExprError> {
        let start = self.pos;
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    if self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    {
                        steps.push(Step::Field(self.name()));
                    } else if self.peek() == Some('"') || self.peek() == Some('\'') {
                        steps.push(Step::Field(self.string()?));
                    } else if steps.is_empty() && self.peek() != Some('[') {
                        // `.` alone: the whole object.
                        break;
                    } else if self.peek() != Some('[') {
                        return Err(self.error("expected a field name after `.`"));
                    }
                }
                Some('[') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        let digits: String = self
                            .rest()
                            .chars()
                            .take_while(char::is_ascii_digit)
                            .collect();
                        self.pos += digits.len();
                        let index = digits
                            .parse()
                            .map_err(|_| self.error("list index is too large"))?;
                        steps.push(Step::Index(index));
                    } else if self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    {
                        let key = self.name();
                        if !self.eat("=") || self.rest().starts_with('=') {
                            return Err(
                                self.error(format!("expected `=` in the selector `[{key}=value]`"))
                            );
                        }
                        self.skip_ws();
                        let value = match self.peek() {
                            Some('"' | '\'') => Value::String(self.string()?),
                            Some('-' | '0'..='9') => self.number()?,
                            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                                Value::String(self.name())
                            }
                            _ => return Err(self.error("expected a value in the selector")),
                        };
                        steps.push(Step::Select(key, value));
                    } else {
                        return Err(
                            self.error("expected an index `[0]` or a selector `[type=Ready]`")
                        );
                    }
                    if !self.eat("]") {
                        return Err(self.error("expected `]`"));
                    }
                }
                _ => break,
            }
        }
        Ok(Path {
            steps,
            text: self.src[start..self.pos].to_string(),
        })
    }

    fn string(&mut self) -> Result<String, ExprError> {
        let quote = self.peek().unwrap_or('"');
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut escaped = false;
        while let Some(c) = self.peek() {
            self.pos += c.len_utf8();
            if escaped {
                out.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == quote {
                return Ok(out);
            } else {
                out.push(c);
            }
        }
        self.pos = start;
        Err(self.error(format!("string is not closed; add a `{quote}`")))
    }

    fn number(&mut self) -> Result<Value, ExprError> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        let digits = |p: &mut Self| {
            let n = p.rest().chars().take_while(char::is_ascii_digit).count();
            p.pos += n;
            n
        };
        if digits(self) == 0 {
            return Err(self.error("expected digits"));
        }
        if self.peek() == Some('.') && self.rest()[1..].starts_with(|c: char| c.is_ascii_digit()) {
            self.pos += 1;
            digits(self);
        }
        let text = &self.src[start..self.pos];
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::from(i));
        }
        text.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| self.error(format!("`{text}` is not a number")))
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Expr::parse(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "expression `{text}`: {e}; see `breakfix schema` or docs/slos.md for the grammar"
            ))
        })
    }
}

impl JsonSchema for Expr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ConditionExpr".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A condition over the object: a field path compared with a value (`.status.readyReplicas >= 2`), combined with && || ! and parentheses; `[key=value]` selects a list element (`.status.conditions[type=Ready].status == \"True\"`); len(path), exists(path).",
            "examples": [".status.readyReplicas >= 2", ".status.conditions[type=Available].status == \"True\""]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "w:1"}]}}},
            "status": {
                "readyReplicas": 1,
                "availableReplicas": 1.0,
                "conditions": [
                    {"type": "Progressing", "status": "True"},
                    {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}
                ]
            }
        })
    }

    #[rstest]
    #[case(".status.readyReplicas >= 1", true)]
    #[case(".status.readyReplicas >= 2", false)]
    #[case(".status.readyReplicas == .spec.replicas", false)]
    #[case(".status.availableReplicas == 1", true)]
    #[case(".status.conditions[type=Available].status == \"True\"", false)]
    #[case(".status.conditions[type=Progressing].status == 'True'", true)]
    #[case(".status.conditions[type=\"Available\"].reason != null", true)]
    #[case(".spec.template.spec.containers[0].image == \"w:1\"", true)]
    #[case(".spec.template.spec.containers[3].image == null", true)]
    #[case(".status.missing < 3", false)]
    #[case(".status.missing == null", true)]
    #[case("!exists(.status.missing)", true)]
    #[case("len(.status.conditions) == 2", true)]
    #[case(".status.readyReplicas", true)]
    #[case(".status.readyReplicas > 0 && .spec.replicas == 2", true)]
    #[case(".status.readyReplicas > 5 || (.spec.replicas >= 2 && !false)", true)]
    #[case(".metadata.labels.\"app.kubernetes.io/name\" == \"web\"", true)]
    #[case(".metadata.name < \"x\"", true)]
    #[case(".metadata.name > 1", false)]
    #[case(".spec.replicas == -2.5", false)]
    fn evaluates_against_an_object(#[case] text: &str, #[case] expected: bool) {
        let expr = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(expr.holds(&deployment()), expected, "{text}");
    }

    #[test]
    fn a_missing_object_is_null() {
        let expr = Expr::parse(".status.readyReplicas >= 1").unwrap();
        assert!(!expr.holds(&Value::Null));
        assert!(
            Expr::parse("!exists(.metadata)")
                .unwrap()
                .holds(&Value::Null)
        );
    }

    #[rstest]
    #[case("", 1, "empty expression")]
    #[case(".status.ready ==", 17, "expected a value after `==`")]
    #[case(".status.ready = 1", 15, "`=` is not an operator")]
    #[case("status.ready == 1", 1, "paths start with `.`")]
    #[case(".status.conditions[type=Ready.status", 30, "expected `]`")]
    #[case(".a == \"open", 7, "string is not closed")]
    #[case(".a == 1 1", 9, "unexpected `1`")]
    #[case("(.a == 1", 9, "expected `)`")]
    fn refuses_malformed_expressions_with_a_column(
        #[case] text: &str,
        #[case] column: usize,
        #[case] message: &str,
    ) {
        let err = Expr::parse(text).unwrap_err();
        assert_eq!(err.column, column, "{text}: {err}");
        assert!(err.message.contains(message), "{text}: {err}");
    }

    #[test]
    fn explains_the_values_it_reads() {
        let expr = Expr::parse(".status.readyReplicas >= .spec.replicas").unwrap();
        assert_eq!(
            expr.explain(&deployment()),
            ".status.readyReplicas = 1, .spec.replicas = 2"
        );
    }

    #[test]
    fn round_trips_through_yaml() {
        let expr: Expr = serde_yaml::from_str("'.status.readyReplicas >= 1'").unwrap();
        let text = serde_yaml::to_string(&expr).unwrap();
        let back: Expr = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, expr);
        assert_eq!(back.as_str(), ".status.readyReplicas >= 1");
    }
}
