//! CQL: syntax tree, parser, values and statement execution.

pub mod ast;
pub mod eval;
pub mod functions;
pub mod lexer;
pub mod parser;
pub mod query_processor;
pub mod statements;
pub mod values;
