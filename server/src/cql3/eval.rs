//! Evaluating terms against bound values, with protocol-level errors.
//!
//! A thin layer over [`super::values`]: the executor only ever sees
//! [`Evaluated`] and `ErrorResponse`.

use bytes::Bytes;
use proto::error::ErrorResponse;
use proto::types::Value;
use proto::value::ColumnType;

use super::ast::Term;
use super::values;

/// A term's value at execution time.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluated {
    Unset,
    Null,
    Value(Bytes),
}

impl Evaluated {
    pub fn into_value(self) -> Option<Bytes> {
        match self {
            Evaluated::Value(b) => Some(b),
            _ => None,
        }
    }
}

/// What a term is evaluated against.
pub struct EvalCtx<'a> {
    /// Bound values in marker order.
    pub values: &'a [Value],
    /// The statement's time, in microseconds (for `now()` and friends).
    pub now_micros: i64,
}

/// Evaluates `term` for a receiver of type `ty`.
pub fn eval(term: &Term, ty: &ColumnType, ctx: &EvalCtx<'_>) -> Result<Evaluated, ErrorResponse> {
    eval_for(term, "value", ty, ctx)
}

/// [`eval`] for a named receiver (a column): errors name it, as
/// Cassandra's do (`Invalid set literal for l of type list<int>`).
pub fn eval_for(
    term: &Term,
    name: &str,
    ty: &ColumnType,
    ctx: &EvalCtx<'_>,
) -> Result<Evaluated, ErrorResponse> {
    if let Term::Bind(m) = term {
        return match ctx.values.get(m.index) {
            None => Err(ErrorResponse::invalid(format!(
                "There were {} markers(?) in CQL but {} bound variables",
                m.index + 1,
                ctx.values.len()
            ))),
            Some(Value::Null) => Ok(Evaluated::Null),
            Some(Value::NotSet) => Ok(Evaluated::Unset),
            Some(Value::Bytes(b)) => {
                proto::value::validate(ty, b).map_err(|e| {
                    ErrorResponse::invalid(format!(
                        "Exception while binding column {}: {e}",
                        m.name.as_deref().unwrap_or("?")
                    ))
                })?;
                Ok(Evaluated::Value(b.clone()))
            }
        };
    }
    let binds: Vec<values::BoundValue<'_>> = ctx
        .values
        .iter()
        .map(|v| match v {
            Value::Null => values::BoundValue::Null,
            Value::NotSet => values::BoundValue::Unset,
            Value::Bytes(b) => values::BoundValue::Bytes(b),
        })
        .collect();
    let vctx = values::EvalContext {
        values: &binds,
        now_micros: ctx.now_micros,
    };
    match values::evaluate_term_for(term, name, ty, &vctx) {
        Ok(values::Evaluated::Unset) => Ok(Evaluated::Unset),
        Ok(values::Evaluated::Null) => Ok(Evaluated::Null),
        Ok(values::Evaluated::Value(b)) => Ok(Evaluated::Value(b)),
        Err(e) => Err(ErrorResponse::invalid(e)),
    }
}

/// Evaluates an `int` term such as `LIMIT ?` or `USING TTL ?`.
pub fn eval_i32(term: &Term, ctx: &EvalCtx<'_>, what: &str) -> Result<Option<i32>, ErrorResponse> {
    match eval(term, &ColumnType::Int, ctx)? {
        Evaluated::Value(b) if b.len() == 4 => {
            Ok(Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        }
        Evaluated::Value(_) => Err(ErrorResponse::invalid(format!("Invalid {what} value"))),
        Evaluated::Null => Err(ErrorResponse::invalid(format!(
            "Invalid null value of {what}"
        ))),
        Evaluated::Unset => Ok(None),
    }
}

/// Evaluates a `bigint` term such as `USING TIMESTAMP ?`.
pub fn eval_i64(term: &Term, ctx: &EvalCtx<'_>, what: &str) -> Result<Option<i64>, ErrorResponse> {
    match eval(term, &ColumnType::BigInt, ctx)? {
        Evaluated::Value(b) if b.len() == 8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b);
            Ok(Some(i64::from_be_bytes(a)))
        }
        Evaluated::Value(_) => Err(ErrorResponse::invalid(format!("Invalid {what} value"))),
        Evaluated::Null => Err(ErrorResponse::invalid(format!(
            "Invalid null value of {what}"
        ))),
        Evaluated::Unset => Ok(None),
    }
}

/// Evaluates `USING TTL ?`: null means no TTL (0), unset means the table's
/// default (`None`), as in Cassandra.
pub fn eval_ttl(term: &Term, ctx: &EvalCtx<'_>) -> Result<Option<i32>, ErrorResponse> {
    if let Evaluated::Null = eval(term, &ColumnType::Int, ctx)? {
        return Ok(Some(0));
    }
    eval_i32(term, ctx, "ttl")
}
