//! Trend formulas (spec/insights.md §1.7): series letters `A`, `B`, … with
//! `+ - * / % **`, unary signs, numbers and parentheses. Division by zero
//! gives 0, as in PostHog.

use crate::error::{QueryError, Result};

/// Longest formula text, in characters: formulas combine a few series, and
/// the parse must stay cheap whatever arrives.
pub const MAX_FORMULA_LENGTH: usize = 1_000;
/// Deepest nesting of parentheses, signs and powers: the parser recurses
/// once per level, so this bounds its stack.
pub const MAX_FORMULA_NESTING: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum Formula {
    Number(f64),
    Series(usize),
    Negate(Box<Formula>),
    Binary(Box<Formula>, char, Box<Formula>),
}

impl Formula {
    /// Parses `text`; `series` is how many series the letters may name.
    pub fn parse(text: &str, series: usize, field: &str) -> Result<Self> {
        let length = text.chars().count();
        if length > MAX_FORMULA_LENGTH {
            return Err(QueryError::invalid(
                field,
                format!("the formula is {length} characters long, more than the limit of {MAX_FORMULA_LENGTH}"),
            ));
        }
        let tokens = tokenize(text).map_err(|e| QueryError::invalid(field, e))?;
        let mut parser = Parser {
            tokens,
            at: 0,
            series,
            depth: 0,
        };
        let formula = parser.sum().map_err(|e| QueryError::invalid(field, e))?;
        if parser.at != parser.tokens.len() {
            return Err(QueryError::invalid(
                field,
                format!("unexpected `{}`", parser.tokens[parser.at]),
            ));
        }
        Ok(formula)
    }

    /// The value at one point, given each series' value there.
    pub fn eval(&self, values: &[f64]) -> f64 {
        match self {
            Self::Number(n) => *n,
            Self::Series(i) => values.get(*i).copied().unwrap_or(0.0),
            Self::Negate(f) => -f.eval(values),
            Self::Binary(a, op, b) => {
                let (a, b) = (a.eval(values), b.eval(values));
                let value = match op {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    '/' if b == 0.0 => 0.0,
                    '/' => a / b,
                    '%' if b == 0.0 => 0.0,
                    '%' => a % b,
                    _ => a.powf(b),
                };
                if value.is_finite() {
                    value
                } else {
                    0.0
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Letter(char),
    Op(char),
    Open,
    Close,
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Letter(c) | Self::Op(c) => write!(f, "{c}"),
            Self::Open => f.write_str("("),
            Self::Close => f.write_str(")"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => {}
            '(' => tokens.push(Token::Open),
            ')' => tokens.push(Token::Close),
            '*' if chars.get(i + 1) == Some(&'*') => {
                tokens.push(Token::Op('^'));
                i += 1;
            }
            '+' | '-' | '*' | '/' | '%' | '^' => tokens.push(Token::Op(c)),
            c if c.is_ascii_alphabetic() => tokens.push(Token::Letter(c.to_ascii_uppercase())),
            c if c.is_ascii_digit() || c == '.' => {
                let start = i;
                while i + 1 < chars.len() && (chars[i + 1].is_ascii_digit() || chars[i + 1] == '.')
                {
                    i += 1;
                }
                let number: String = chars[start..=i].iter().collect();
                let value: f64 = number
                    .parse()
                    .map_err(|_| format!("`{number}` is not a number"))?;
                if !value.is_finite() {
                    return Err(format!("`{number}` is too large a number"));
                }
                tokens.push(Token::Number(value));
            }
            other => return Err(format!("unexpected character `{other}`")),
        }
        i += 1;
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    series: usize,
    /// Nesting levels entered and not yet left.
    depth: usize,
}

impl Parser {
    /// Enters one level of nesting, refusing more than the limit.
    fn nest<T>(&mut self, inner: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        if self.depth >= MAX_FORMULA_NESTING {
            return Err(format!(
                "the formula nests parentheses, signs or powers deeper than the limit of {MAX_FORMULA_NESTING} levels"
            ));
        }
        self.depth += 1;
        let result = inner(self);
        self.depth -= 1;
        result
    }

    fn peek_op(&self, ops: &[char]) -> Option<char> {
        match self.tokens.get(self.at) {
            Some(Token::Op(c)) if ops.contains(c) => Some(*c),
            _ => None,
        }
    }

    fn sum(&mut self) -> Result<Formula, String> {
        let mut left = self.product()?;
        while let Some(op) = self.peek_op(&['+', '-']) {
            self.at += 1;
            left = Formula::Binary(Box::new(left), op, Box::new(self.product()?));
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Formula, String> {
        let mut left = self.unary()?;
        while let Some(op) = self.peek_op(&['*', '/', '%']) {
            self.at += 1;
            left = Formula::Binary(Box::new(left), op, Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Formula, String> {
        match self.peek_op(&['+', '-']) {
            Some(op) => {
                self.at += 1;
                let inner = self.nest(Self::unary)?;
                Ok(if op == '-' {
                    Formula::Negate(Box::new(inner))
                } else {
                    inner
                })
            }
            None => self.power(),
        }
    }

    fn power(&mut self) -> Result<Formula, String> {
        let base = self.atom()?;
        if self.peek_op(&['^']).is_some() {
            self.at += 1;
            return Ok(Formula::Binary(
                Box::new(base),
                '^',
                Box::new(self.nest(Self::unary)?),
            ));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Formula, String> {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or("the formula ends too early")?;
        self.at += 1;
        match token {
            Token::Number(n) => Ok(Formula::Number(n)),
            Token::Letter(c) => {
                let index = (c as u8 - b'A') as usize;
                if index >= self.series {
                    return Err(format!("`{c}` names no series (there are {})", self.series));
                }
                Ok(Formula::Series(index))
            }
            Token::Open => {
                let inner = self.nest(Self::sum)?;
                match self.tokens.get(self.at) {
                    Some(Token::Close) => {
                        self.at += 1;
                        Ok(inner)
                    }
                    _ => Err("a `(` is not closed".into()),
                }
            }
            other => Err(format!("unexpected `{other}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, values: &[f64]) -> f64 {
        Formula::parse(text, values.len(), "f")
            .unwrap()
            .eval(values)
    }

    #[test]
    fn precedence_and_letters() {
        assert_eq!(eval("A + B * 2", &[1.0, 3.0]), 7.0);
        assert_eq!(eval("(a + b) / 2", &[1.0, 3.0]), 2.0);
        assert_eq!(eval("-A ** 2", &[3.0]), -9.0);
        assert_eq!(eval("A % 4", &[10.0]), 2.0);
    }

    #[test]
    fn division_by_zero_is_zero() {
        assert_eq!(eval("A / B", &[5.0, 0.0]), 0.0);
    }

    #[test]
    fn unknown_series_and_syntax_errors_are_named() {
        let err = Formula::parse("A + C", 2, "trendsFilter.formula").unwrap_err();
        assert!(err.to_string().contains("`C` names no series"), "{err}");
        assert!(Formula::parse("(A + B", 2, "f").is_err());
        assert!(Formula::parse("A $ B", 2, "f").is_err());
    }

    #[test]
    fn huge_or_deep_formulas_are_refused_by_name() {
        for text in ["-".repeat(300_000), "(".repeat(300_000)] {
            let err = Formula::parse(&text, 1, "trendsFilter.formula").unwrap_err();
            assert!(err.to_string().contains("limit of 1000"), "{err}");
        }
        let nested = |n: usize| format!("{}A{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(eval(&nested(32), &[3.0]), 3.0);
        let err = Formula::parse(&nested(33), 1, "f").unwrap_err();
        assert!(err.to_string().contains("limit of 32 levels"), "{err}");
        assert!(Formula::parse(&format!("{}A", "-".repeat(33)), 1, "f").is_err());
        assert!(Formula::parse(&("A**".repeat(40) + "A"), 1, "f").is_err());
        // Long flat sums are fine: they are loops, not nesting.
        let sum = vec!["A"; 400].join("+");
        assert_eq!(eval(&sum, &[1.0]), 400.0);
    }
}
