//! Reads a CTranslate2 `model.bin`: the header, then an index of every
//! variable (name, shape, dtype, where its bytes lie) built without loading
//! the weights. Every read is bounds-checked, so a truncated or corrupt file
//! fails with the offset and what was expected there.
//!
//! Layout (little-endian): `u32` binary version, spec name (string), `u32`
//! spec revision, `u32` variable count; per variable: name (string), `u8`
//! rank, `u32` × rank dims, `u8` dtype, `u32` byte count, the bytes; then
//! `u32` alias count and (alias, target) string pairs. A string is a `u16`
//! length that includes a trailing NUL, then the bytes and the NUL.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::ImportError;

/// The binary version this reader understands.
const BINARY_VERSION: u32 = 6;

/// A CTranslate2 data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl DType {
    fn from_id(id: u8) -> Option<DType> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::Bf16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::Bf16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }

    /// The name CTranslate2 uses.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::F16 => "float16",
            DType::Bf16 => "bfloat16",
        }
    }
}

/// One variable of the model, located in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    pub shape: Vec<u64>,
    pub dtype: DType,
    /// Offset of its first data byte.
    pub offset: u64,
    /// Byte count.
    pub len: u64,
}

impl Variable {
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// The index of a `model.bin`.
#[derive(Debug)]
pub struct Ct2Model {
    pub path: PathBuf,
    pub spec: String,
    pub revision: u32,
    pub variables: BTreeMap<String, Variable>,
    file: BufReader<File>,
}

/// A bounds-checked cursor over the file.
struct Cursor<'a> {
    path: &'a Path,
    file: &'a mut BufReader<File>,
    pos: u64,
    len: u64,
}

impl Cursor<'_> {
    fn truncated(&self, need: u64, what: &str) -> ImportError {
        ImportError::Corrupt {
            path: self.path.to_path_buf(),
            offset: self.pos,
            message: format!(
                "{what} needs {need} byte(s) here but the file ends at byte {} ({} left): the file is truncated",
                self.len,
                self.len - self.pos
            ),
        }
    }

    fn corrupt(&self, at: u64, message: String) -> ImportError {
        ImportError::Corrupt {
            path: self.path.to_path_buf(),
            offset: at,
            message,
        }
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, ImportError> {
        if self.len - self.pos < n {
            return Err(self.truncated(n, what));
        }
        let mut buf = vec![0; n as usize];
        self.file
            .read_exact(&mut buf)
            .map_err(|e| ImportError::Io {
                action: "cannot read",
                path: self.path.to_path_buf(),
                source: e,
            })?;
        self.pos += n;
        Ok(buf)
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), ImportError> {
        if self.len - self.pos < n {
            return Err(self.truncated(n, what));
        }
        self.file
            .seek_relative(n as i64)
            .map_err(|e| ImportError::Io {
                action: "cannot seek in",
                path: self.path.to_path_buf(),
                source: e,
            })?;
        self.pos += n;
        Ok(())
    }

    fn u8(&mut self, what: &str) -> Result<u8, ImportError> {
        Ok(self.bytes(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, ImportError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, ImportError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, what: &str) -> Result<String, ImportError> {
        let at = self.pos;
        let len = self.u16(&format!("the length of {what}"))?;
        if len == 0 {
            return Err(self.corrupt(
                at,
                format!("{what} has length 0 (a string includes its NUL)"),
            ));
        }
        let mut bytes = self.bytes(u64::from(len), what)?;
        if bytes.pop() != Some(0) {
            return Err(self.corrupt(at, format!("{what} does not end with NUL")));
        }
        String::from_utf8(bytes).map_err(|_| self.corrupt(at, format!("{what} is not valid UTF-8")))
    }
}

impl Ct2Model {
    /// Opens `path` and indexes its variables (weights are not read).
    pub fn open(path: &Path) -> Result<Ct2Model, ImportError> {
        let io = |action| {
            move |source| ImportError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        };
        let file = File::open(path).map_err(io("cannot open"))?;
        let len = file.metadata().map_err(io("cannot stat"))?.len();
        let mut file = BufReader::new(file);
        let mut c = Cursor {
            path,
            file: &mut file,
            pos: 0,
            len,
        };
        let version = c.u32("the binary version")?;
        if version != BINARY_VERSION {
            return Err(c.corrupt(
                0,
                format!("binary version {version}; expected {BINARY_VERSION} (is this a CTranslate2 model.bin?)"),
            ));
        }
        let spec = c.string("the spec name")?;
        let revision = c.u32("the spec revision")?;
        let count_at = c.pos;
        let count = c.u32("the variable count")?;
        // Each variable takes at least 9 bytes; a count beyond that is garbage.
        if u64::from(count) * 9 > len {
            return Err(c.corrupt(
                count_at,
                format!("variable count {count} cannot fit in a {len}-byte file: the file is truncated or corrupt"),
            ));
        }
        let mut variables = BTreeMap::new();
        for i in 0..count {
            let at = c.pos;
            let name = c.string(&format!("the name of variable {i}"))?;
            let what = |part: &str| format!("the {part} of variable `{name}`");
            let rank = c.u8(&what("rank"))?;
            let mut shape = Vec::with_capacity(rank.into());
            for _ in 0..rank {
                shape.push(u64::from(c.u32(&what("dimensions"))?));
            }
            let dtype_at = c.pos;
            let id = c.u8(&what("dtype"))?;
            let dtype = DType::from_id(id).ok_or_else(|| {
                c.corrupt(
                    dtype_at,
                    format!("{} is {id}, not a CTranslate2 type (0..=5)", what("dtype")),
                )
            })?;
            let len_at = c.pos;
            let bytes = u64::from(c.u32(&what("byte count"))?);
            let elements: u64 = shape.iter().product();
            if elements * dtype.size() != bytes {
                return Err(c.corrupt(
                    len_at,
                    format!(
                        "variable `{name}` {shape:?} of {} should take {} bytes but its byte count says {bytes}",
                        dtype.name(),
                        elements * dtype.size()
                    ),
                ));
            }
            let offset = c.pos;
            c.skip(
                bytes,
                &format!(
                    "the {bytes}-byte data of variable `{name}` {shape:?} {}",
                    dtype.name()
                ),
            )?;
            if variables
                .insert(
                    name.clone(),
                    Variable {
                        shape,
                        dtype,
                        offset,
                        len: bytes,
                    },
                )
                .is_some()
            {
                return Err(c.corrupt(at, format!("variable `{name}` appears twice")));
            }
        }
        // Aliases (the tied output projection); read to check the file's end.
        let aliases = c.u32("the alias count")?;
        for i in 0..aliases {
            c.string(&format!("alias {i}"))?;
            c.string(&format!("the target of alias {i}"))?;
        }
        if c.pos != len {
            let at = c.pos;
            return Err(c.corrupt(
                at,
                format!("{} unexpected byte(s) after the last alias", len - at),
            ));
        }
        Ok(Ct2Model {
            path: path.to_path_buf(),
            spec,
            revision,
            variables,
            file,
        })
    }

    /// The variable called `name`.
    pub fn get(&self, name: &str) -> Result<&Variable, ImportError> {
        self.variables
            .get(name)
            .ok_or_else(|| ImportError::MissingVariable {
                path: self.path.clone(),
                name: name.to_owned(),
            })
    }

    /// The bytes of variable `name`.
    pub fn read(&mut self, name: &str) -> Result<(Variable, Vec<u8>), ImportError> {
        let var = self.get(name)?.clone();
        let mut buf = vec![0; var.len as usize];
        let path = self.path.clone();
        let io = |source| ImportError::Io {
            action: "cannot read",
            path: path.clone(),
            source,
        };
        self.file.seek(SeekFrom::Start(var.offset)).map_err(io)?;
        self.file.read_exact(&mut buf).map_err(io)?;
        Ok((var, buf))
    }

    /// A scalar integer variable (e.g. `encoder/num_heads`).
    pub fn scalar(&mut self, name: &str) -> Result<i64, ImportError> {
        let (var, bytes) = self.read(name)?;
        let value = match (var.dtype, bytes.as_slice()) {
            (DType::I8, [a]) => i64::from(*a as i8),
            (DType::I16, [a, b]) => i64::from(i16::from_le_bytes([*a, *b])),
            (DType::I32, [a, b, c, d]) => i64::from(i32::from_le_bytes([*a, *b, *c, *d])),
            _ => {
                return Err(ImportError::Unsupported {
                    path: self.path.clone(),
                    message: format!(
                        "`{name}` should be an integer scalar, is {:?} {}",
                        var.shape,
                        var.dtype.name()
                    ),
                })
            }
        };
        Ok(value)
    }
}
