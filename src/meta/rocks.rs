//! RocksDB behind a narrow interface. Only this file imports `rocksdb`.

use std::path::Path;

use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions,
};

use super::engine::KvEngine;
use super::{Batch, Cf, MetaError, Op};

/// The node's metadata store: one RocksDB database with a column family per [`Cf`].
pub struct Rocks {
    db: DB,
}

fn engine(op: &'static str) -> impl Fn(rocksdb::Error) -> MetaError {
    move |e| MetaError::Engine {
        op,
        message: e.into_string(),
    }
}

impl Rocks {
    /// Opens the database in `path`, creating it and any missing family ([`Cf::ALL`]).
    /// RocksDB refuses a folder holding a family this release does not know.
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.set_bottommost_compression_type(rocksdb::DBCompressionType::Zstd);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(4);
        let cfs = Cf::ALL.iter().map(|cf| {
            let mut o = Options::default();
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(cf.name(), o)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(engine("open"))?;
        Ok(Self { db })
    }

    fn handle(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily, MetaError> {
        self.db.cf_handle(cf.name()).ok_or(MetaError::Engine {
            op: "column family",
            message: format!("missing column family {}", cf.name()),
        })
    }
}

impl KvEngine for Rocks {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        self.db.get_cf(self.handle(cf)?, key).map_err(engine("get"))
    }

    /// Applies the batch atomically. With `sync`, the write-ahead log is fsynced before this
    /// returns (RocksDB groups concurrent synced writes into one fsync).
    fn write(&self, batch: Batch, sync: bool) -> Result<(), MetaError> {
        let mut wb = WriteBatch::default();
        for op in batch.ops {
            match op {
                Op::Put(cf, k, v) => wb.put_cf(self.handle(cf)?, k, v),
                Op::Delete(cf, k) => wb.delete_cf(self.handle(cf)?, k),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(wb, &wo).map_err(engine("write"))
    }

    /// Writes the write-ahead log's buffer and fsyncs it (RocksDB's `FlushWAL(true)`).
    fn sync(&self) -> Result<(), MetaError> {
        self.db.flush_wal(true).map_err(engine("sync"))
    }

    /// Visits keys from `from` upward, while `f` says continue.
    fn scan(&self, cf: Cf, from: &[u8], f: &mut super::engine::Visit<'_>) -> Result<(), MetaError> {
        let it = self.db.iterator_cf(
            self.handle(cf)?,
            IteratorMode::From(from, Direction::Forward),
        );
        for item in it {
            let (k, v) = item.map_err(engine("scan"))?;
            if f(&k, &v).is_break() {
                break;
            }
        }
        Ok(())
    }
}
