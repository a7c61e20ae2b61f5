//! RESULT (spec section 4.2.5): Void, Rows, Set_keyspace, Prepared,
//! Schema_change, plus [`RowsWriter`] to serialise rows straight into an
//! output buffer.

use bytes::Bytes;

use crate::error::ProtocolError;
use crate::response::schema_change::SchemaChange;
use crate::type_option::{read_type_option, write_type_option_for_version};
use crate::types::{self, Reader};
use crate::value::ColumnType;

/// RESULT kind: no result.
pub const KIND_VOID: i32 = 0x0001;
/// RESULT kind: rows.
pub const KIND_ROWS: i32 = 0x0002;
/// RESULT kind: answer to `USE`.
pub const KIND_SET_KEYSPACE: i32 = 0x0003;
/// RESULT kind: answer to PREPARE.
pub const KIND_PREPARED: i32 = 0x0004;
/// RESULT kind: answer to DDL.
pub const KIND_SCHEMA_CHANGE: i32 = 0x0005;

/// Metadata flag: one keyspace/table pair for all columns.
pub const FLAG_GLOBAL_TABLES_SPEC: i32 = 0x0001;
/// Metadata flag: a paging state follows; more pages exist.
pub const FLAG_HAS_MORE_PAGES: i32 = 0x0002;
/// Metadata flag: no column specs (the client asked to skip them).
pub const FLAG_NO_METADATA: i32 = 0x0004;
/// Metadata flag (v5): a new result metadata id follows.
pub const FLAG_METADATA_CHANGED: i32 = 0x0008;

/// One column of a result or of a prepared statement's bind variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// Keyspace of the table.
    pub keyspace: String,
    /// Table name.
    pub table: String,
    /// Column name (or bind marker name).
    pub name: String,
    /// CQL type.
    pub ty: ColumnType,
}

impl ColumnSpec {
    /// A column spec.
    pub fn new(
        keyspace: impl Into<String>,
        table: impl Into<String>,
        name: impl Into<String>,
        ty: ColumnType,
    ) -> ColumnSpec {
        ColumnSpec {
            keyspace: keyspace.into(),
            table: table.into(),
            name: name.into(),
            ty,
        }
    }
}

/// `<metadata>` of a Rows result or of a Prepared result's result part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResultMetadata {
    /// The columns. When decoding a result with `no_metadata`, these are
    /// placeholders (empty names, `blob` type) that only carry the count.
    pub columns: Vec<ColumnSpec>,
    /// Set when more pages exist.
    pub paging_state: Option<Bytes>,
    /// Send only the column count (the client has the specs).
    pub no_metadata: bool,
    /// v5: the result metadata changed since the client's id; this is the
    /// new id.
    pub new_metadata_id: Option<Bytes>,
}

/// True when every column is in one keyspace and table.
fn shares_table(columns: &[ColumnSpec]) -> bool {
    match columns.split_first() {
        Some((first, rest)) => rest
            .iter()
            .all(|c| c.keyspace == first.keyspace && c.table == first.table),
        None => false,
    }
}

fn count_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn write_column_specs(out: &mut Vec<u8>, version: u8, columns: &[ColumnSpec], global: bool) {
    if global {
        if let Some(first) = columns.first() {
            types::write_string(out, &first.keyspace);
            types::write_string(out, &first.table);
        }
    }
    for c in columns {
        if !global {
            types::write_string(out, &c.keyspace);
            types::write_string(out, &c.table);
        }
        types::write_string(out, &c.name);
        write_type_option_for_version(out, &c.ty, version);
    }
}

fn read_column_specs(
    r: &mut Reader<'_>,
    count: usize,
    global: bool,
) -> Result<Vec<ColumnSpec>, ProtocolError> {
    let global_spec = if global && count > 0 {
        Some((r.read_string()?.to_string(), r.read_string()?.to_string()))
    } else {
        None
    };
    // A spec is at least a 2-byte name and a 2-byte type id.
    let mut columns = Vec::with_capacity(count.min(r.remaining() / 4));
    for _ in 0..count {
        let (keyspace, table) = match &global_spec {
            Some((k, t)) => (k.clone(), t.clone()),
            None => (r.read_string()?.to_string(), r.read_string()?.to_string()),
        };
        let name = r.read_string()?.to_string();
        let ty = read_type_option(r)?;
        columns.push(ColumnSpec {
            keyspace,
            table,
            name,
            ty,
        });
    }
    Ok(columns)
}

fn read_count(r: &mut Reader<'_>, what: &'static str) -> Result<usize, ProtocolError> {
    let n = r.read_int()?;
    usize::try_from(n).map_err(|_| ProtocolError::InvalidLength {
        what,
        length: i64::from(n),
    })
}

impl ResultMetadata {
    /// Metadata for `columns`, no paging.
    pub fn new(columns: Vec<ColumnSpec>) -> ResultMetadata {
        ResultMetadata {
            columns,
            ..ResultMetadata::default()
        }
    }

    fn flags(&self, version: u8) -> i32 {
        let mut flags = 0;
        if self.no_metadata {
            flags |= FLAG_NO_METADATA;
        } else if shares_table(&self.columns) {
            flags |= FLAG_GLOBAL_TABLES_SPEC;
        }
        if self.paging_state.is_some() {
            flags |= FLAG_HAS_MORE_PAGES;
        }
        if version >= 5 && self.new_metadata_id.is_some() {
            flags |= FLAG_METADATA_CHANGED;
        }
        flags
    }

    /// Encodes `<metadata>` for protocol `version`.
    pub fn encode(&self, version: u8, out: &mut Vec<u8>) {
        self.encode_parts(version, out);
    }

    /// Encodes, returning the offsets of the flags and of where a paging
    /// state goes (right after the column count).
    fn encode_parts(&self, version: u8, out: &mut Vec<u8>) -> (usize, usize) {
        let flags = self.flags(version);
        let flags_pos = out.len();
        types::write_int(out, flags);
        types::write_int(out, count_i32(self.columns.len()));
        let paging_pos = out.len();
        if let Some(ps) = &self.paging_state {
            types::write_bytes(out, Some(ps));
        }
        if flags & FLAG_METADATA_CHANGED != 0 {
            types::write_short_bytes(out, self.new_metadata_id.as_deref().unwrap_or_default());
        }
        if !self.no_metadata {
            write_column_specs(
                out,
                version,
                &self.columns,
                flags & FLAG_GLOBAL_TABLES_SPEC != 0,
            );
        }
        (flags_pos, paging_pos)
    }

    /// Decodes `<metadata>`.
    pub fn decode(r: &mut Reader<'_>, version: u8) -> Result<ResultMetadata, ProtocolError> {
        let flags = r.read_int()?;
        let count = read_count(r, "<columns_count>")?;
        let paging_state = if flags & FLAG_HAS_MORE_PAGES != 0 {
            r.read_bytes_owned()?
        } else {
            None
        };
        let new_metadata_id = if version >= 5 && flags & FLAG_METADATA_CHANGED != 0 {
            Some(r.read_short_bytes_owned()?)
        } else {
            None
        };
        let no_metadata = flags & FLAG_NO_METADATA != 0;
        let columns = if no_metadata {
            // Placeholders only carry the count; no real result has more
            // than 65535 columns, so refuse to allocate for more.
            if count > usize::from(u16::MAX) {
                return Err(ProtocolError::InvalidLength {
                    what: "<columns_count>",
                    length: count as i64,
                });
            }
            vec![ColumnSpec::new("", "", "", ColumnType::Blob); count]
        } else {
            read_column_specs(r, count, flags & FLAG_GLOBAL_TABLES_SPEC != 0)?
        };
        Ok(ResultMetadata {
            columns,
            paging_state,
            no_metadata,
            new_metadata_id,
        })
    }
}

/// A Rows result, materialised (system tables, tests, clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows {
    /// Column metadata and paging state.
    pub metadata: ResultMetadata,
    /// Cells, row by row; `None` is null.
    pub rows: Vec<Vec<Option<Bytes>>>,
}

impl Rows {
    /// Encodes `<metadata><rows_count><rows_content>` (without the kind).
    pub fn encode(&self, version: u8, out: &mut Vec<u8>) {
        let mut w = RowsWriter::new(out, version, &self.metadata);
        for row in &self.rows {
            for cell in row {
                w.cell(cell.as_deref());
            }
            w.end_row();
        }
        w.finish(None);
    }

    /// Decodes `<metadata><rows_count><rows_content>`.
    pub fn decode(r: &mut Reader<'_>, version: u8) -> Result<Rows, ProtocolError> {
        let metadata = ResultMetadata::decode(r, version)?;
        let n = read_count(r, "<rows_count>")?;
        let cols = metadata.columns.len();
        if cols == 0 && n > 0 {
            return Err(ProtocolError::invalid(
                "Rows result with rows but no columns",
            ));
        }
        // Each cell is at least its 4-byte length.
        let min_row = cols.saturating_mul(4).max(1);
        let mut rows = Vec::with_capacity(n.min(r.remaining() / min_row));
        for _ in 0..n {
            let mut row = Vec::with_capacity(cols);
            for _ in 0..cols {
                row.push(r.read_bytes_owned()?);
            }
            rows.push(row);
        }
        Ok(Rows { metadata, rows })
    }
}

/// Serialises a Rows result body incrementally into a buffer, with no
/// per-cell allocation: metadata first, then cells as they are produced,
/// then the row count (and any paging state) patched in by
/// [`finish`](Self::finish).
///
/// Writes `<metadata><rows_count><rows>` — not the RESULT kind; write
/// [`KIND_ROWS`] first when writing a whole RESULT body in place (e.g.
/// after [`crate::frame::begin_envelope`]).
#[derive(Debug)]
pub struct RowsWriter<'a> {
    out: &'a mut Vec<u8>,
    flags_pos: usize,
    paging_pos: usize,
    count_pos: usize,
    rows: i32,
    columns: usize,
    cells_in_row: usize,
}

impl<'a> RowsWriter<'a> {
    /// Writes `metadata` and a placeholder row count.
    pub fn new(out: &'a mut Vec<u8>, version: u8, metadata: &ResultMetadata) -> RowsWriter<'a> {
        let (flags_pos, paging_pos) = metadata.encode_parts(version, out);
        let count_pos = out.len();
        types::write_int(out, 0);
        RowsWriter {
            out,
            flags_pos,
            paging_pos,
            count_pos,
            rows: 0,
            columns: metadata.columns.len(),
            cells_in_row: 0,
        }
    }

    /// Appends a cell: `Some(bytes)` or null.
    pub fn cell(&mut self, value: Option<&[u8]>) {
        types::write_bytes(self.out, value);
        self.cells_in_row += 1;
    }

    /// Appends a null cell.
    pub fn null(&mut self) {
        self.cell(None);
    }

    /// Appends a cell whose bytes `write` serialises directly into the
    /// buffer; the length is patched afterwards.
    pub fn cell_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let len_pos = self.out.len();
        types::write_int(self.out, 0);
        write(self.out);
        let len = count_i32(self.out.len() - len_pos - 4);
        self.out[len_pos..len_pos + 4].copy_from_slice(&len.to_be_bytes());
        self.cells_in_row += 1;
    }

    /// Ends the current row. Rows with the wrong number of cells are a
    /// caller bug (checked in debug builds).
    pub fn end_row(&mut self) {
        debug_assert_eq!(
            self.cells_in_row, self.columns,
            "row has {} cells, metadata {} columns",
            self.cells_in_row, self.columns
        );
        self.cells_in_row = 0;
        self.rows = self.rows.saturating_add(1);
    }

    /// Rows ended so far.
    pub fn rows(&self) -> usize {
        self.rows as usize
    }

    /// Current length of the underlying buffer (to cap a page by size).
    pub fn buffer_len(&self) -> usize {
        self.out.len()
    }

    /// Patches the row count and, if `paging_state` is given (more pages
    /// exist), inserts it and sets the Has_more_pages flag. Returns the
    /// number of rows.
    pub fn finish(self, paging_state: Option<&[u8]>) -> usize {
        let count = self.rows.to_be_bytes();
        self.out[self.count_pos..self.count_pos + 4].copy_from_slice(&count);
        if let Some(ps) = paging_state {
            let flags_bytes: [u8; 4] = [
                self.out[self.flags_pos],
                self.out[self.flags_pos + 1],
                self.out[self.flags_pos + 2],
                self.out[self.flags_pos + 3],
            ];
            let flags = i32::from_be_bytes(flags_bytes);
            if flags & FLAG_HAS_MORE_PAGES == 0 {
                let flags = flags | FLAG_HAS_MORE_PAGES;
                self.out[self.flags_pos..self.flags_pos + 4].copy_from_slice(&flags.to_be_bytes());
                let mut encoded = Vec::with_capacity(4 + ps.len());
                types::write_bytes(&mut encoded, Some(ps));
                self.out.splice(self.paging_pos..self.paging_pos, encoded);
            }
        }
        self.rows as usize
    }
}

/// `<metadata>` of a Prepared result's bind variables.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreparedMetadata {
    /// Indexes (into `columns`) of the bind markers giving the partition
    /// key components, in partition key order; empty if not all are bound.
    pub pk_indexes: Vec<u16>,
    /// The bind variables.
    pub columns: Vec<ColumnSpec>,
}

impl PreparedMetadata {
    /// Encodes the bind variables' `<metadata>` (no pk indexes in v3).
    pub fn encode(&self, version: u8, out: &mut Vec<u8>) {
        let global = shares_table(&self.columns);
        types::write_int(out, if global { FLAG_GLOBAL_TABLES_SPEC } else { 0 });
        types::write_int(out, count_i32(self.columns.len()));
        if version >= 4 {
            types::write_int(out, count_i32(self.pk_indexes.len()));
            for &i in &self.pk_indexes {
                types::write_short(out, i);
            }
        }
        write_column_specs(out, version, &self.columns, global);
    }

    /// Decodes the bind variables' `<metadata>`.
    pub fn decode(r: &mut Reader<'_>, version: u8) -> Result<PreparedMetadata, ProtocolError> {
        let flags = r.read_int()?;
        let count = read_count(r, "<columns_count>")?;
        let mut pk_indexes = Vec::new();
        if version >= 4 {
            let n = read_count(r, "<pk_count>")?;
            pk_indexes.reserve(n.min(r.remaining() / 2));
            for _ in 0..n {
                pk_indexes.push(r.read_short()?);
            }
        }
        let columns = read_column_specs(r, count, flags & FLAG_GLOBAL_TABLES_SPEC != 0)?;
        Ok(PreparedMetadata {
            pk_indexes,
            columns,
        })
    }
}

/// A Prepared result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The statement id (Cassandra: MD5 of keyspace and query text).
    pub id: Bytes,
    /// v5: id of the result metadata, sent back in EXECUTE.
    pub result_metadata_id: Option<Bytes>,
    /// The bind variables.
    pub variables: PreparedMetadata,
    /// The result columns (empty for non-SELECT statements).
    pub result_metadata: ResultMetadata,
}

impl Prepared {
    /// Encodes the Prepared result (without the kind).
    pub fn encode(&self, version: u8, out: &mut Vec<u8>) {
        types::write_short_bytes(out, &self.id);
        if version >= 5 {
            types::write_short_bytes(out, self.result_metadata_id.as_deref().unwrap_or_default());
        }
        self.variables.encode(version, out);
        self.result_metadata.encode(version, out);
    }

    /// Decodes the Prepared result (after the kind).
    pub fn decode(r: &mut Reader<'_>, version: u8) -> Result<Prepared, ProtocolError> {
        let id = r.read_short_bytes_owned()?;
        let result_metadata_id = if version >= 5 {
            Some(r.read_short_bytes_owned()?)
        } else {
            None
        };
        let variables = PreparedMetadata::decode(r, version)?;
        let result_metadata = ResultMetadata::decode(r, version)?;
        Ok(Prepared {
            id,
            result_metadata_id,
            variables,
            result_metadata,
        })
    }
}

/// The body of a RESULT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultBody {
    /// Nothing to return (writes, most DDL before v2...).
    Void,
    /// Rows of a SELECT.
    Rows(Rows),
    /// `<metadata><rows_count><rows>` already serialised with
    /// [`RowsWriter`] for this connection's protocol version.
    RawRows(Bytes),
    /// Answer to `USE ks`.
    SetKeyspace(String),
    /// Answer to PREPARE.
    Prepared(Prepared),
    /// Answer to DDL.
    SchemaChange(SchemaChange),
}

impl ResultBody {
    /// The result kind.
    pub fn kind(&self) -> i32 {
        match self {
            ResultBody::Void => KIND_VOID,
            ResultBody::Rows(_) | ResultBody::RawRows(_) => KIND_ROWS,
            ResultBody::SetKeyspace(_) => KIND_SET_KEYSPACE,
            ResultBody::Prepared(_) => KIND_PREPARED,
            ResultBody::SchemaChange(_) => KIND_SCHEMA_CHANGE,
        }
    }

    /// Encodes `<kind>` and the kind's body.
    pub fn encode(&self, version: u8, out: &mut Vec<u8>) {
        types::write_int(out, self.kind());
        match self {
            ResultBody::Void => {}
            ResultBody::Rows(rows) => rows.encode(version, out),
            ResultBody::RawRows(raw) => out.extend_from_slice(raw),
            ResultBody::SetKeyspace(ks) => types::write_string(out, ks),
            ResultBody::Prepared(p) => p.encode(version, out),
            ResultBody::SchemaChange(sc) => sc.encode(out),
        }
    }

    /// Decodes a RESULT body. Rows always decode to [`ResultBody::Rows`].
    pub fn decode(r: &mut Reader<'_>, version: u8) -> Result<ResultBody, ProtocolError> {
        Ok(match r.read_int()? {
            KIND_VOID => ResultBody::Void,
            KIND_ROWS => ResultBody::Rows(Rows::decode(r, version)?),
            KIND_SET_KEYSPACE => ResultBody::SetKeyspace(r.read_string()?.to_string()),
            KIND_PREPARED => ResultBody::Prepared(Prepared::decode(r, version)?),
            KIND_SCHEMA_CHANGE => ResultBody::SchemaChange(SchemaChange::decode(r)?),
            other => {
                return Err(ProtocolError::invalid(format!(
                    "Unknown RESULT kind {other}"
                )))
            }
        })
    }
}
