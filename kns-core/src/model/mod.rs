//! Typed IDs and plain data describing a cluster's networking objects.
//!
//! Every entity lives in a `Vec` of its [`Cluster`] and is named by an index newtype handed
//! out in load order, so iteration order is deterministic and lookups are O(1). Names are kept
//! for output and looked up only at the edges (CLI, manifests).

mod cluster;
mod ids;
mod labels;
mod objects;

pub use cluster::{AddressRange, Cluster, ClusterConfig, CniMode, ProxyMode};
pub use ids::{IngressId, NamespaceId, NodeId, PodId, PolicyId, ServiceId};
pub use labels::{Labels, Operator, Requirement, Selector};
pub use objects::*;
