//! Renderers for reachability matrices: a table for people, JSON and CSV for tools.
//!
//! The JSON shape is a contract read by other tools:
//! `{"probes":[{"matrix":{"x/a":{"x/a":true}},"port":80,"protocol":"TCP"}]}` with every
//! object's keys sorted; `matrix[from][to]` says whether `from` may connect to `to`.

use std::collections::BTreeMap;

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use kns_core::PortProtocol;
use serde::Serialize;

/// A reachability matrix ready for output: pod names and, per probed port, the allowed bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixView {
    /// Pods as `namespace/name`, in row/column order.
    pub pods: Vec<String>,
    /// One grid per probed port: `grid[from][to]`.
    pub probes: Vec<(PortProtocol, Vec<Vec<bool>>)>,
}

#[derive(Serialize)]
struct JsonProbe<'a> {
    matrix: BTreeMap<&'a str, BTreeMap<&'a str, bool>>,
    port: u16,
    protocol: &'static str,
}

#[derive(Serialize)]
struct JsonMatrix<'a> {
    probes: Vec<JsonProbe<'a>>,
}

impl MatrixView {
    /// The JSON contract (keys sorted, one line, newline-terminated).
    pub fn to_json(&self) -> String {
        let probes = self
            .probes
            .iter()
            .map(|(pp, grid)| JsonProbe {
                matrix: self
                    .pods
                    .iter()
                    .zip(grid)
                    .map(|(from, row)| {
                        let row = self.pods.iter().map(String::as_str).zip(row.iter().copied());
                        (from.as_str(), row.collect())
                    })
                    .collect(),
                port: pp.port,
                protocol: pp.protocol.as_str(),
            })
            .collect();
        let mut out = serde_json::to_string(&JsonMatrix { probes })
            .expect("a map of strings and bools always serializes");
        out.push('\n');
        out
    }

    /// One line per pair: `protocol,port,from,to,allowed`, with a header.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("protocol,port,from,to,allowed\n");
        for (pp, grid) in &self.probes {
            for (from, row) in self.pods.iter().zip(grid) {
                for (to, allowed) in self.pods.iter().zip(row) {
                    out.push_str(&format!("{},{},{from},{to},{allowed}\n", pp.protocol, pp.port));
                }
            }
        }
        out
    }

    /// A grid per port: rows are sources (numbered), columns the destinations with the same
    /// numbers, so that the grid stays narrow whatever the pod names; `✓` allowed, `·` denied.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        for (pp, grid) in &self.probes {
            let allowed: usize = grid.iter().map(|r| r.iter().filter(|a| **a).count()).sum();
            let total = self.pods.len() * self.pods.len();
            out.push_str(&format!(
                "{pp}: {allowed} of {total} connections allowed (rows: from, columns: to; ✓ allowed, · denied)\n"
            ));
            let mut table = Table::new();
            table
                .load_style(presets::UTF8_BORDERS_ONLY)
                .set_content_arrangement(ContentArrangement::Disabled);
            let mut header = vec![String::from("from \\ to")];
            header.extend((1..=self.pods.len()).map(|i| i.to_string()));
            table.set_header(header);
            for (i, (from, row)) in self.pods.iter().zip(grid).enumerate() {
                let mut cells =
                    vec![format!("{:>w$} {from}", i + 1, w = self.pods.len().to_string().len())];
                cells.extend(row.iter().map(|a| if *a { "✓" } else { "·" }.to_string()));
                table.add_row(cells);
            }
            for col in 1..=self.pods.len() {
                if let Some(c) = table.column_mut(col) {
                    c.set_cell_alignment(CellAlignment::Center);
                }
            }
            out.push_str(&table.to_string());
            out.push_str("\n\n");
        }
        out
    }
}

/// The cluster's IDs of a matrix view's pods, in the view's order.
pub(super) fn pod_ids(
    cluster: &kns_core::model::Cluster,
    view: &MatrixView,
) -> Result<Vec<kns_core::model::PodId>, super::CliError> {
    view.pods
        .iter()
        .map(|name| {
            cluster.pod_by_ref(name).map(|p| p.id).ok_or_else(|| {
                super::CliError::Internal(format!("matrix pod `{name}` not in the cluster"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kns_core::Protocol;

    fn view() -> MatrixView {
        MatrixView {
            pods: vec!["x/a".into(), "x/b".into()],
            probes: vec![(
                PortProtocol::new(80, Protocol::Tcp),
                vec![vec![true, false], vec![true, true]],
            )],
        }
    }

    #[test]
    fn json_has_the_contract_shape() {
        assert_eq!(
            view().to_json(),
            "{\"probes\":[{\"matrix\":{\"x/a\":{\"x/a\":true,\"x/b\":false},\"x/b\":{\"x/a\":true,\"x/b\":true}},\"port\":80,\"protocol\":\"TCP\"}]}\n"
        );
    }

    #[test]
    fn csv_lists_every_pair() {
        assert_eq!(
            view().to_csv(),
            "protocol,port,from,to,allowed\nTCP,80,x/a,x/a,true\nTCP,80,x/a,x/b,false\nTCP,80,x/b,x/a,true\nTCP,80,x/b,x/b,true\n"
        );
    }

    #[test]
    fn table_marks_cells() {
        let t = view().to_table();
        assert!(t.starts_with("80/TCP: 3 of 4 connections allowed"), "{t}");
        assert!(t.contains('·') && t.contains('✓'), "{t}");
    }
}
