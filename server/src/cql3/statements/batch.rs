//! BATCH: several modifications applied with one timestamp.

use engine::mutation::Mutation;
use proto::error::ErrorResponse;

use super::modification::{Existing, Lwt, ModificationStatement};
use crate::cql3::ast::BatchKind;
use crate::cql3::eval::{eval_i64, EvalCtx};

/// Collects the mutations of a batch; statements keep their own bound
/// values (`ctxs[i]` for `stmts[i]`).
pub fn batch_mutations(
    kind: BatchKind,
    stmts: &[(&ModificationStatement, EvalCtx<'_>, Option<Existing>)],
    timestamp: i64,
) -> Result<Vec<Mutation>, ErrorResponse> {
    let mut out = Vec::new();
    for (stmt, ctx, existing) in stmts {
        if !matches!(stmt.lwt, Lwt::None) {
            return Err(ErrorResponse::invalid(
                "Conditional updates in batches are not supported by Tessera yet",
            ));
        }
        let is_counter = stmt.table.is_counter;
        match kind {
            BatchKind::Counter if !is_counter => {
                return Err(ErrorResponse::invalid(
                    "Cannot include non-counter statement in a counter batch",
                ))
            }
            BatchKind::Logged | BatchKind::Unlogged if is_counter => {
                return Err(ErrorResponse::invalid(
                    "Cannot include a counter statement in a logged batch",
                ))
            }
            _ => {}
        }
        stmt.mutations(ctx, timestamp, existing.as_ref(), &mut out)?;
    }
    Ok(out)
}

/// `BEGIN BATCH USING TIMESTAMP n`.
pub fn batch_timestamp(
    t: Option<&crate::cql3::ast::Term>,
    ctx: &EvalCtx<'_>,
) -> Result<Option<i64>, ErrorResponse> {
    match t {
        Some(t) => eval_i64(t, ctx, "timestamp"),
        None => Ok(None),
    }
}
