//! The subset of AWS IoT SQL (version 2016-03-23) that the local bridge evaluates:
//! `SELECT` with `*`, literals, object literals, payload fields and the functions
//! `newuuid()`, `timestamp()`, `topic([n])`, `clientid()`, `encode(*, 'base64')` and
//! `parse_time(pattern, millis[, 'UTC'])`, `FROM 'topic/filter'`, no `WHERE`.
//!
//! Anything else is refused when the rule is loaded, so a template that uses more than
//! the local stack can run fails loudly instead of behaving differently from AWS.

use std::fmt;

use base64::Engine as _;
use chrono::{TimeZone, Utc};
use serde_json::{Map, Value};

use super::topic::TopicFilter;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlError {
    #[error("rule SQL: {0}")]
    Syntax(String),
    #[error("rule SQL: {0} is not supported by the local rule engine")]
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("payload is not JSON, so only `SELECT *` can pass it on")]
    PayloadNotJson,
    #[error("{0}")]
    Function(String),
}

/// A parsed rule statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub projections: Vec<Projection>,
    pub from: TopicFilter,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    /// `*`: every field of a JSON payload (or the raw bytes when it is the only one).
    All,
    Expr {
        expr: Expr,
        alias: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    Object(Vec<(String, Expr)>),
    /// Path into the JSON payload, e.g. `metrics.temperature`.
    Field(Vec<String>),
    Call(Function),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Function {
    NewUuid,
    Timestamp,
    /// `topic()` is the whole topic, `topic(n)` its n-th level counting from 1.
    Topic(Option<usize>),
    ClientId,
    EncodePayloadBase64,
    ParseTime {
        pattern: Box<Expr>,
        millis: Box<Expr>,
    },
}

/// What a message brings to evaluation.
#[derive(Debug, Clone, Copy)]
pub struct MessageContext<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub client_id: &'a str,
    /// Receive time in milliseconds since the Unix epoch, as `timestamp()` reports it.
    pub received_at_ms: i64,
}

/// The rule's output for one message.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleOutput {
    Json(Map<String, Value>),
    /// `SELECT *` over a payload that is not JSON passes the bytes unchanged.
    Binary(Vec<u8>),
}

impl RuleOutput {
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            RuleOutput::Json(map) => Value::Object(map).to_string().into_bytes(),
            RuleOutput::Binary(bytes) => bytes,
        }
    }
}

impl Statement {
    pub fn parse(sql: &str) -> Result<Self, SqlError> {
        let mut parser = Parser::new(sql)?;
        parser.keyword("SELECT")?;
        let mut projections = vec![parser.projection()?];
        while parser.eat(&Token::Comma) {
            projections.push(parser.projection()?);
        }
        parser.keyword("FROM")?;
        let from = match parser.next() {
            Some(Token::Str(filter)) => TopicFilter::parse(&filter)
                .map_err(|e| SqlError::Syntax(format!("FROM topic filter: {e}")))?,
            other => {
                return Err(SqlError::Syntax(format!(
                    "expected a quoted topic filter after FROM, found {other:?}"
                )))
            }
        };
        match parser.next() {
            None => {}
            Some(Token::Ident(word)) if word.eq_ignore_ascii_case("WHERE") => {
                return Err(SqlError::Unsupported("WHERE".into()))
            }
            Some(other) => {
                return Err(SqlError::Syntax(format!(
                    "unexpected {other:?} after FROM clause"
                )))
            }
        }
        Ok(Self { projections, from })
    }

    pub fn evaluate(&self, message: &MessageContext<'_>) -> Result<RuleOutput, EvalError> {
        let payload: Option<Value> = serde_json::from_slice(message.payload).ok();
        if self.projections == [Projection::All] {
            return Ok(match payload {
                Some(Value::Object(map)) => RuleOutput::Json(map),
                _ => RuleOutput::Binary(message.payload.to_vec()),
            });
        }
        let mut out = Map::new();
        for projection in &self.projections {
            match projection {
                Projection::All => match &payload {
                    Some(Value::Object(map)) => out.extend(map.clone()),
                    _ => return Err(EvalError::PayloadNotJson),
                },
                Projection::Expr { expr, alias } => {
                    // An undefined result (missing field) leaves the key out, as on AWS.
                    if let Some(value) = expr.evaluate(message, payload.as_ref())? {
                        out.insert(alias.clone(), value);
                    }
                }
            }
        }
        Ok(RuleOutput::Json(out))
    }
}

impl Expr {
    /// Parses a lone expression, as used in `${...}` substitution templates.
    pub fn parse(text: &str) -> Result<Self, SqlError> {
        let mut parser = Parser::new(text)?;
        let expr = parser.expr()?;
        match parser.next() {
            None => Ok(expr),
            Some(other) => Err(SqlError::Syntax(format!(
                "unexpected {other:?} in expression"
            ))),
        }
    }

    pub fn evaluate(
        &self,
        message: &MessageContext<'_>,
        payload: Option<&Value>,
    ) -> Result<Option<Value>, EvalError> {
        Ok(match self {
            Expr::Literal(value) => Some(value.clone()),
            Expr::Object(fields) => {
                let mut map = Map::new();
                for (key, expr) in fields {
                    if let Some(value) = expr.evaluate(message, payload)? {
                        map.insert(key.clone(), value);
                    }
                }
                Some(Value::Object(map))
            }
            Expr::Field(path) => {
                let mut current = payload;
                for part in path {
                    current = current.and_then(|v| v.get(part));
                }
                current.cloned()
            }
            Expr::Call(function) => function.evaluate(message, payload)?,
        })
    }
}

impl Function {
    fn evaluate(
        &self,
        message: &MessageContext<'_>,
        payload: Option<&Value>,
    ) -> Result<Option<Value>, EvalError> {
        Ok(match self {
            Function::NewUuid => Some(Value::String(uuid::Uuid::new_v4().to_string())),
            Function::Timestamp => Some(Value::from(message.received_at_ms)),
            Function::Topic(None) => Some(Value::String(message.topic.to_owned())),
            Function::Topic(Some(level)) => message
                .topic
                .split('/')
                .nth(level - 1)
                .map(|s| Value::String(s.to_owned())),
            Function::ClientId => Some(Value::String(message.client_id.to_owned())),
            Function::EncodePayloadBase64 => Some(Value::String(
                base64::engine::general_purpose::STANDARD.encode(message.payload),
            )),
            Function::ParseTime { pattern, millis } => {
                let pattern = match pattern.evaluate(message, payload)? {
                    Some(Value::String(p)) => p,
                    other => {
                        return Err(EvalError::Function(format!(
                            "parse_time pattern must be a string, got {other:?}"
                        )))
                    }
                };
                let Some(millis) = millis.evaluate(message, payload)?.and_then(|v| v.as_i64())
                else {
                    return Ok(None);
                };
                Some(Value::String(format_joda(&pattern, millis)?))
            }
        })
    }
}

/// Formats epoch milliseconds in UTC with a Joda-Time pattern (the subset IoT rules use).
fn format_joda(pattern: &str, millis: i64) -> Result<String, EvalError> {
    let time = Utc
        .timestamp_millis_opt(millis)
        .single()
        .ok_or_else(|| EvalError::Function(format!("parse_time: {millis} is out of range")))?;
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&ch| ch == '\'')
                .ok_or_else(|| EvalError::Function("parse_time: unclosed quote".into()))?;
            out.extend(&chars[i + 1..i + 1 + end]);
            i += end + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&ch| ch == c).count();
        let field = match (c, run) {
            ('y', 4) => time.format("%Y").to_string(),
            ('M', 2) => time.format("%m").to_string(),
            ('d', 2) => time.format("%d").to_string(),
            ('H', 2) => time.format("%H").to_string(),
            ('m', 2) => time.format("%M").to_string(),
            ('s', 2) => time.format("%S").to_string(),
            ('S', 3) => time.format("%3f").to_string(),
            ('Z', 1) => "+0000".to_string(),
            ('Z', 2) => "+00:00".to_string(),
            _ => {
                return Err(EvalError::Function(format!(
                    "parse_time: pattern letter {} is not supported locally",
                    c.to_string().repeat(run)
                )))
            }
        };
        out.push_str(&field);
        i += run;
    }
    Ok(out)
}

// ------------------------------------------------------------------ lexer and parser

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Number(serde_json::Number),
    Star,
    Comma,
    Colon,
    Dot,
    LParen,
    RParen,
    LBrace,
    RBrace,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

fn lex(text: &str) -> Result<Vec<Token>, SqlError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '*' | ',' | ':' | '.' | '(' | ')' | '{' | '}' => {
                chars.next();
                tokens.push(match c {
                    '*' => Token::Star,
                    ',' => Token::Comma,
                    ':' => Token::Colon,
                    '.' => Token::Dot,
                    '(' => Token::LParen,
                    ')' => Token::RParen,
                    '{' => Token::LBrace,
                    _ => Token::RBrace,
                });
            }
            '\'' | '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some((_, ch)) if ch == c => break,
                        Some((_, ch)) => s.push(ch),
                        None => {
                            return Err(SqlError::Syntax(format!("unterminated string at {start}")))
                        }
                    }
                }
                tokens.push(Token::Str(s));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut s = String::new();
                while let Some(&(_, ch)) = chars.peek() {
                    if ch.is_ascii_digit() || ch == '.' || ch == '-' || ch == 'e' || ch == 'E' {
                        s.push(ch);
                        chars.next();
                    } else {
                        break;
                    }
                }
                let number: serde_json::Number = s
                    .parse()
                    .map_err(|_| SqlError::Syntax(format!("bad number {s:?}")))?;
                tokens.push(Token::Number(number));
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = String::new();
                while let Some(&(_, ch)) = chars.peek() {
                    if ch.is_alphanumeric() || ch == '_' {
                        s.push(ch);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Ident(s));
            }
            other => {
                return Err(SqlError::Unsupported(format!(
                    "the character {other:?} (operators and other syntax)"
                )))
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: std::iter::Peekable<std::vec::IntoIter<Token>>,
}

impl Parser {
    fn new(text: &str) -> Result<Self, SqlError> {
        Ok(Self {
            tokens: lex(text)?.into_iter().peekable(),
        })
    }

    fn next(&mut self) -> Option<Token> {
        self.tokens.next()
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.tokens.peek() == Some(token) {
            self.tokens.next();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: Token) -> Result<(), SqlError> {
        match self.next() {
            Some(t) if t == token => Ok(()),
            other => Err(SqlError::Syntax(format!(
                "expected {token}, found {other:?}"
            ))),
        }
    }

    fn keyword(&mut self, word: &str) -> Result<(), SqlError> {
        match self.next() {
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word) => Ok(()),
            other => Err(SqlError::Syntax(format!(
                "expected {word}, found {other:?}"
            ))),
        }
    }

    fn projection(&mut self) -> Result<Projection, SqlError> {
        if self.eat(&Token::Star) {
            return Ok(Projection::All);
        }
        let expr = self.expr()?;
        let alias = if matches!(self.tokens.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case("AS"))
        {
            self.next();
            match self.next() {
                Some(Token::Ident(name)) => name,
                other => {
                    return Err(SqlError::Syntax(format!(
                        "expected a name after AS, found {other:?}"
                    )))
                }
            }
        } else {
            match &expr {
                Expr::Field(path) => path.last().cloned().unwrap_or_default(),
                _ => {
                    return Err(SqlError::Unsupported(
                        "an expression without AS (AWS names it by position)".into(),
                    ))
                }
            }
        };
        Ok(Projection::Expr { expr, alias })
    }

    fn expr(&mut self) -> Result<Expr, SqlError> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Expr::Literal(Value::String(s))),
            Some(Token::Number(n)) => Ok(Expr::Literal(Value::Number(n))),
            Some(Token::LBrace) => self.object(),
            Some(Token::Ident(word)) if word.eq_ignore_ascii_case("true") => {
                Ok(Expr::Literal(Value::Bool(true)))
            }
            Some(Token::Ident(word)) if word.eq_ignore_ascii_case("false") => {
                Ok(Expr::Literal(Value::Bool(false)))
            }
            Some(Token::Ident(name)) => {
                if self.eat(&Token::LParen) {
                    self.call(&name)
                } else {
                    let mut path = vec![name];
                    while self.eat(&Token::Dot) {
                        match self.next() {
                            Some(Token::Ident(part)) => path.push(part),
                            other => {
                                return Err(SqlError::Syntax(format!(
                                    "expected a field name after '.', found {other:?}"
                                )))
                            }
                        }
                    }
                    Ok(Expr::Field(path))
                }
            }
            other => Err(SqlError::Syntax(format!(
                "expected an expression, found {other:?}"
            ))),
        }
    }

    fn object(&mut self) -> Result<Expr, SqlError> {
        let mut fields = Vec::new();
        if self.eat(&Token::RBrace) {
            return Ok(Expr::Object(fields));
        }
        loop {
            let key = match self.next() {
                Some(Token::Str(key)) => key,
                other => {
                    return Err(SqlError::Syntax(format!(
                        "expected a quoted key in object literal, found {other:?}"
                    )))
                }
            };
            self.expect(Token::Colon)?;
            fields.push((key, self.expr()?));
            if self.eat(&Token::RBrace) {
                return Ok(Expr::Object(fields));
            }
            self.expect(Token::Comma)?;
        }
    }

    fn call(&mut self, name: &str) -> Result<Expr, SqlError> {
        let lower = name.to_ascii_lowercase();
        let function = match lower.as_str() {
            "newuuid" => Function::NewUuid,
            "timestamp" => Function::Timestamp,
            "clientid" => Function::ClientId,
            "topic" => {
                if self.eat(&Token::RParen) {
                    return Ok(Expr::Call(Function::Topic(None)));
                }
                let level = match self.next() {
                    Some(Token::Number(n)) => n.as_u64().filter(|&n| n >= 1),
                    _ => None,
                }
                .ok_or_else(|| SqlError::Syntax("topic() takes a level number from 1".into()))?;
                Function::Topic(Some(level as usize))
            }
            "encode" => {
                self.expect(Token::Star)?;
                self.expect(Token::Comma)?;
                match self.next() {
                    Some(Token::Str(scheme)) if scheme == "base64" => Function::EncodePayloadBase64,
                    other => return Err(SqlError::Unsupported(format!("encode scheme {other:?}"))),
                }
            }
            "parse_time" => {
                let pattern = Box::new(self.expr()?);
                self.expect(Token::Comma)?;
                let millis = Box::new(self.expr()?);
                if self.eat(&Token::Comma) {
                    match self.next() {
                        Some(Token::Str(zone)) if zone == "UTC" => {}
                        other => {
                            return Err(SqlError::Unsupported(format!(
                                "parse_time time zone {other:?}"
                            )))
                        }
                    }
                }
                Function::ParseTime { pattern, millis }
            }
            _ => return Err(SqlError::Unsupported(format!("the function {name}()"))),
        };
        self.expect(Token::RParen)?;
        Ok(Expr::Call(function))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TELEMETRY_SQL: &str =
        "SELECT newuuid() AS id, 'iot.telemetry.raw.v1' AS type, 1 AS version, \
        parse_time(\"yyyy-MM-dd'T'HH:mm:ss.SSSZZ\", timestamp(), 'UTC') AS time, \
        'iot-core/telemetry-rule' AS source, topic(2) AS subject, \
        {'payload': encode(*, 'base64'), 'topic': topic(), 'client_id': clientid(), \
        'received_at_ms': timestamp(), 'channel': 'mqtt'} AS data FROM 'devices/+/telemetry'";

    fn message<'a>(topic: &'a str, payload: &'a [u8]) -> MessageContext<'a> {
        MessageContext {
            topic,
            payload,
            client_id: "sensor-1",
            received_at_ms: 1_795_428_000_250,
        }
    }

    #[test]
    fn telemetry_rule_builds_the_raw_envelope() {
        let statement = Statement::parse(TELEMETRY_SQL).unwrap();
        assert!(statement.from.matches("devices/sensor-1/telemetry"));
        let RuleOutput::Json(out) = statement
            .evaluate(&message("devices/sensor-1/telemetry", b"not json at all"))
            .unwrap()
        else {
            panic!("expected JSON output");
        };
        assert_eq!(out["type"], "iot.telemetry.raw.v1");
        assert_eq!(out["version"], 1);
        assert_eq!(out["subject"], "sensor-1");
        assert_eq!(out["time"], "2026-11-23T10:00:00.250+00:00");
        assert_eq!(out["data"]["payload"], "bm90IGpzb24gYXQgYWxs");
        assert_eq!(out["data"]["topic"], "devices/sensor-1/telemetry");
        assert_eq!(out["data"]["received_at_ms"], 1_795_428_000_250i64);
        assert_eq!(out["id"].as_str().unwrap().len(), 36);
    }

    #[test]
    fn select_star_passes_json_and_binary_through() {
        let statement = Statement::parse("SELECT * FROM 'a/#'").unwrap();
        assert_eq!(
            statement.evaluate(&message("a/b", br#"{"x":1}"#)).unwrap(),
            RuleOutput::Json(serde_json::from_str(r#"{"x":1}"#).unwrap())
        );
        assert_eq!(
            statement.evaluate(&message("a/b", &[0, 159, 146])).unwrap(),
            RuleOutput::Binary(vec![0, 159, 146])
        );
    }

    #[test]
    fn star_with_more_fields_needs_a_json_payload() {
        let statement = Statement::parse("SELECT *, topic(2) AS device FROM 'a/+'").unwrap();
        let RuleOutput::Json(out) = statement.evaluate(&message("a/d1", br#"{"x":1}"#)).unwrap()
        else {
            panic!()
        };
        assert_eq!(out["device"], "d1");
        assert_eq!(out["x"], 1);
        assert_eq!(
            statement.evaluate(&message("a/d1", b"\xff")).unwrap_err(),
            EvalError::PayloadNotJson
        );
    }

    #[test]
    fn missing_fields_are_left_out() {
        let statement =
            Statement::parse("SELECT metrics.temperature AS t, status FROM 'a'").unwrap();
        let RuleOutput::Json(out) = statement
            .evaluate(&message("a", br#"{"metrics":{"temperature":21.5}}"#))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(out["t"], 21.5);
        assert!(!out.contains_key("status"));
    }

    #[test]
    fn unsupported_syntax_is_refused_at_load() {
        for sql in [
            "SELECT * FROM 'a' WHERE temperature > 50",
            "SELECT upper(name) AS n FROM 'a'",
            "SELECT encode(*, 'hex') AS p FROM 'a'",
            "SELECT a + b AS c FROM 'a'",
        ] {
            assert!(
                matches!(Statement::parse(sql), Err(SqlError::Unsupported(_))),
                "{sql} should be unsupported"
            );
        }
        for sql in [
            "SELECT FROM 'a'",
            "SELECT * FROM",
            "SELECT * FROM 'a/#/b'",
            "SELECT 'x AS y FROM 'a'",
        ] {
            assert!(Statement::parse(sql).is_err(), "{sql} should not parse");
        }
    }

    #[test]
    fn substitution_expressions() {
        let expr = Expr::parse("topic(2)").unwrap();
        let msg = message("devices/d-9/telemetry", b"{}");
        assert_eq!(expr.evaluate(&msg, None).unwrap(), Some(Value::from("d-9")));
        let expr = Expr::parse("topic(7)").unwrap();
        assert_eq!(expr.evaluate(&msg, None).unwrap(), None);
    }

    #[test]
    fn joda_patterns() {
        assert_eq!(
            format_joda("yyyy-MM-dd HH:mm:ss Z", 0).unwrap(),
            "1970-01-01 00:00:00 +0000"
        );
        assert!(format_joda("EEE", 0).is_err());
        assert!(format_joda("'open", 0).is_err());
    }

    proptest::proptest! {
        // Whatever bytes a device sends, the telemetry rule yields an envelope whose
        // payload decodes back to exactly those bytes.
        #[test]
        fn telemetry_rule_preserves_any_payload(payload in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let statement = Statement::parse(TELEMETRY_SQL).unwrap();
            let RuleOutput::Json(out) = statement.evaluate(&message("devices/x/telemetry", &payload)).unwrap() else {
                panic!("telemetry rule output is JSON");
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(out["data"]["payload"].as_str().unwrap())
                .unwrap();
            proptest::prop_assert_eq!(decoded, payload);
        }

        #[test]
        fn parser_never_panics(sql in "\\PC{0,80}") {
            let _ = Statement::parse(&sql);
        }
    }
}
