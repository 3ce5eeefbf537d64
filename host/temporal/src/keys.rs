//! Entity keys (and tiebreak columns): one or more columns of a batch as
//! arrow-row [`Rows`], so composite keys of any orderable type compare as
//! byte strings.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::Range;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::buffer::NullBuffer;
use arrow::row::{RowConverter, Rows, SortField};

use crate::error::{column, column_type, Result};

/// The columns `names` of `batch` (the `side`), in order.
///
/// # Errors
/// [`Error::MissingColumn`](crate::Error::MissingColumn).
pub(crate) fn columns(batch: &RecordBatch, names: &[String], side: &str) -> Result<Vec<ArrayRef>> {
    names
        .iter()
        .map(|name| column(batch, name, side).cloned())
        .collect()
}

/// A converter ordering `arrays` (named `names`, of the `side`) each
/// ascending, nulls first.
///
/// # Errors
/// [`Error::ColumnType`](crate::Error::ColumnType) naming the first column
/// arrow-row cannot order.
pub(crate) fn converter(arrays: &[ArrayRef], names: &[String], side: &str) -> Result<RowConverter> {
    let mut fields = Vec::with_capacity(arrays.len());
    for (array, name) in arrays.iter().zip(names) {
        let field = SortField::new(array.data_type().clone());
        if !RowConverter::supports_fields(std::slice::from_ref(&field)) {
            return Err(column_type(
                array,
                name,
                side,
                "key and tiebreak columns must have a type Arrow can order (numbers, strings, \
                 binary, dates, times, and lists or structs of those)"
                    .to_string(),
            ));
        }
        fields.push(field);
    }
    Ok(RowConverter::new(fields)?)
}

/// The rows of some columns of one batch, comparable with any other
/// [`KeyRows`] made by the same converter.
pub(crate) struct KeyRows {
    /// `None` when there are no columns: every row is equal.
    rows: Option<Rows>,
    /// Rows with a null in no column.
    valid: Option<NullBuffer>,
}

impl KeyRows {
    /// Encode `arrays` (of the types `converter` was made for).
    ///
    /// # Errors
    /// [`Error::Arrow`](crate::Error::Arrow) if the encoding fails.
    pub(crate) fn new(converter: &RowConverter, arrays: &[ArrayRef]) -> Result<KeyRows> {
        let valid = arrays.iter().fold(None, |acc: Option<NullBuffer>, array| {
            NullBuffer::union(acc.as_ref(), array.logical_nulls().as_ref())
        });
        let rows = if arrays.is_empty() {
            None
        } else {
            Some(converter.convert_columns(arrays)?)
        };
        Ok(KeyRows { rows, valid })
    }

    /// Whether row `i` has no null in any column.
    pub(crate) fn is_valid(&self, i: usize) -> bool {
        self.valid.as_ref().is_none_or(|v| v.is_valid(i))
    }

    /// The encoded bytes of row `i` (empty when there are no columns):
    /// equal keys of two [`KeyRows`] made by one converter have equal bytes.
    pub(crate) fn bytes(&self, i: usize) -> &[u8] {
        self.rows.as_ref().map_or(&[], |r| r.row(i).data())
    }

    /// A dense id per distinct key among the rows `include` accepts (ids
    /// 0, 1, … in order of first appearance; `usize::MAX` for the rest), and
    /// the map from encoded key to id for lookups from another side. Sorting
    /// and grouping by these ids compares integers, not byte strings.
    pub(crate) fn dense_ids(
        &self,
        rows: usize,
        include: impl Fn(usize) -> bool,
    ) -> (HashMap<&[u8], usize>, Vec<usize>) {
        let mut ids: HashMap<&[u8], usize> = HashMap::new();
        let mut id_of = vec![usize::MAX; rows];
        for (i, id) in id_of.iter_mut().enumerate() {
            if include(i) {
                let next = ids.len();
                *id = *ids.entry(self.bytes(i)).or_insert(next);
            }
        }
        (ids, id_of)
    }

    /// Row `i` of `self` against row `j` of `other`.
    pub(crate) fn cmp(&self, i: usize, other: &KeyRows, j: usize) -> Ordering {
        match (&self.rows, &other.rows) {
            (Some(a), Some(b)) => a.row(i).cmp(&b.row(j)),
            _ => Ordering::Equal,
        }
    }
}

/// The ranges of `order` over which `same` holds between neighbours.
pub(crate) fn runs(order: &[usize], same: impl Fn(usize, usize) -> bool) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=order.len() {
        if i == order.len() || !same(order[start], order[i]) {
            if start < i {
                runs.push(start..i);
            }
            start = i;
        }
    }
    runs
}
