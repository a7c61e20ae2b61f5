//! CQL: syntax tree, parser, values and statement execution.

pub mod ast;
pub mod lexer;
pub mod parser;
pub mod functions;
pub mod values;
