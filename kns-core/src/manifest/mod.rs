//! Kubernetes YAML → k8s-openapi types → [`model`](crate::model), with located errors.
//!
//! CONTRACT (being implemented): the public API below is fixed; the bodies are filled in by
//! the manifest work. kns-core does no I/O: callers hand in file names and their text.

use crate::model::Cluster;

/// Where a problem was found: file, document (1-based), object and field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name as given to the loader.
    pub file: String,
    /// The 1-based index of the YAML document in the file (items of a `List` count inside it).
    pub document: Option<usize>,
    /// `Kind namespace/name` of the object, when known.
    pub object: Option<String>,
    /// The field path inside the object (`spec.ingress[0].ports[1].port`), when known.
    pub field: Option<String>,
}

/// One located problem in the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ManifestError {
    /// Where it is.
    pub location: Location,
    /// What is wrong, in plain words.
    pub message: String,
}

impl ManifestError {
    /// One line for people: `file: document N (Kind ns/name): field: message`.
    pub fn render(&self) -> String {
        let l = &self.location;
        let mut out = l.file.clone();
        if let Some(d) = l.document {
            out.push_str(&format!(": document {d}"));
        }
        if let Some(o) = &l.object {
            out.push_str(&format!(" ({o})"));
        }
        if let Some(f) = &l.field {
            out.push_str(&format!(": {f}"));
        }
        out.push_str(": ");
        out.push_str(&self.message);
        out
    }
}

/// Every problem found in one load (the loader reports them all, not just the first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the manifests", .0.len())]
pub struct ManifestErrors(pub Vec<ManifestError>);

/// A successfully loaded cluster, with the warnings the input deserves.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The cluster.
    pub cluster: Cluster,
    /// Fields that kns reads but does not act on, and similar notes.
    pub warnings: Vec<ManifestError>,
}

/// Collects manifest files, then builds one [`Cluster`] from all of them.
#[derive(Debug, Default)]
pub struct Loader {
    _sources: Vec<(String, String)>,
}

impl Loader {
    /// An empty loader.
    pub fn new() -> Self {
        Loader::default()
    }

    /// Adds one file's text (any number of YAML documents).
    pub fn add(&mut self, file: impl Into<String>, text: impl Into<String>) -> &mut Self {
        self._sources.push((file.into(), text.into()));
        self
    }

    /// Parses everything added and builds the cluster.
    pub fn finish(self) -> Result<Loaded, ManifestErrors> {
        todo!("manifest loader")
    }
}

/// Loads a single file's text.
pub fn load_str(file: &str, text: &str) -> Result<Loaded, ManifestErrors> {
    let mut loader = Loader::new();
    loader.add(file, text);
    loader.finish()
}
