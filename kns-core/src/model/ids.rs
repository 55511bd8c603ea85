//! Index newtypes for the entities of a [`Cluster`](super::Cluster).

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub struct $name(pub u32);

        impl $name {
            /// The position of the entity in its cluster table.
            pub fn index(self) -> usize {
                self.0 as usize
            }

            /// The ID of the entity at `index` in its cluster table.
            pub fn from_index(index: usize) -> Self {
                // Tables are bounded far below u32::MAX by memory; exceeding it is a bug.
                $name(u32::try_from(index).expect("entity table exceeds u32::MAX entries"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}#{}", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// Identifies a node of the cluster.
    NodeId
);
id_type!(
    /// Identifies a Kubernetes namespace.
    NamespaceId
);
id_type!(
    /// Identifies a pod.
    PodId
);
id_type!(
    /// Identifies a Service.
    ServiceId
);
id_type!(
    /// Identifies a NetworkPolicy.
    PolicyId
);
id_type!(
    /// Identifies an Ingress.
    IngressId
);
