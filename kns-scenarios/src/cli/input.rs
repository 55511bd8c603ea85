//! Reading `-f PATH` arguments: files, directories of manifests, or `-` for standard input.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use kns_core::manifest::{Loaded, Loader};

use super::error::CliError;

/// File extensions read from directories (files named explicitly are read whatever their name).
const MANIFEST_EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Reads every manifest named by `paths` and loads one cluster from all of them.
///
/// Directories are walked recursively in lexical order, so the same tree always loads the
/// same way; `-` reads standard input.
pub fn load_cluster(paths: &[PathBuf]) -> Result<Loaded, CliError> {
    Ok(loader_for(paths)?.finish()?)
}

/// Like [`load_cluster`], adding kns's built-in ingress controller when the manifests have
/// Ingress objects and no controller pod; the flag says whether it was added.
pub fn load_cluster_with_ingress(paths: &[PathBuf]) -> Result<(Loaded, bool), CliError> {
    Ok(loader_for(paths)?.finish_with_ingress_controller()?)
}

/// A loader holding every manifest named by `paths`.
fn loader_for(paths: &[PathBuf]) -> Result<Loader, CliError> {
    let mut loader = Loader::new();
    for (name, text) in read_sources(paths)? {
        loader.add(name, text);
    }
    Ok(loader)
}

/// Reads every manifest file named by `paths` (directories walked in lexical order, `-` for
/// standard input) and returns `(name, text)` pairs in load order.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<(String, String)>, CliError> {
    let mut sources = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| CliError::Io { path: "<stdin>".into(), source: e })?;
            sources.push(("<stdin>".to_string(), text));
            continue;
        }
        for file in manifest_files(path)? {
            let text = fs::read_to_string(&file)
                .map_err(|e| CliError::Io { path: file.display().to_string(), source: e })?;
            sources.push((file.display().to_string(), text));
        }
    }
    Ok(sources)
}

/// The manifest files under `path`: itself if it is a file, else its manifest files, sorted.
fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, CliError> {
    let io_err = |e| CliError::Io { path: path.display().to_string(), source: e };
    let meta = fs::metadata(path).map_err(io_err)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(path)
        .map_err(io_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_err)?;
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            files.extend(manifest_files(&entry)?);
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| MANIFEST_EXTENSIONS.contains(&e))
        {
            files.push(entry);
        }
    }
    if files.is_empty() {
        return Err(CliError::Usage(format!(
            "{}: directory holds no .yaml, .yml or .json files",
            path.display()
        )));
    }
    Ok(files)
}
