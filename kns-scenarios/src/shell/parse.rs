//! One shell line → a typed command. Words are split as a POSIX shell does (quotes, backslash,
//! `#` comments, by [`kns_sim::cmd::tokenize`]); the Linux tools keep their words, which
//! kns-sim's own parsers read when the command runs.

use kns_core::PortProtocol;

/// A line that cannot be understood; the message is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(message.into()))
}

/// The commands of the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Nothing to do (a blank line or a comment).
    Empty,
    /// `help`.
    Help,
    /// `exit` or `quit`.
    Exit,
    /// `use [TARGET]`: show or change where plain commands run.
    Use(Option<String>),
    /// `explain FROM TO PORT`.
    Explain {
        /// Source pod (`ns/name`, `name`) or address.
        from: String,
        /// Destination pod or address.
        to: String,
        /// Destination port.
        port: PortProtocol,
    },
    /// The kubectl subset.
    Kubectl(Kubectl),
    /// A Linux tool (`ip`, `ping`, `curl`, `dig`, ...) with its arguments, run in the current
    /// context.
    Tool(Vec<String>),
    /// `ip netns exec NETNS TOOL ARGS...`: a tool run in a named network namespace.
    NetnsExec {
        /// The network namespace (`node-1`, `default.web`, ...).
        netns: String,
        /// The tool and its arguments.
        words: Vec<String>,
    },
}

/// The Linux tools the shell runs in a namespace.
pub const TOOLS: [&str; 12] = [
    "ip",
    "ping",
    "traceroute",
    "curl",
    "nc",
    "nslookup",
    "dig",
    "iptables",
    "conntrack",
    "sysctl",
    "bridge",
    "tc",
];

/// Words a POSIX shell would read as operators; kns has none of them.
const SHELL_OPERATORS: [&str; 8] = ["|", "||", "&&", ";", ">", ">>", "<", "&"];

/// kubectl resource types the shell knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `pods`, `pod`, `po`.
    Pods,
    /// `services`, `service`, `svc`.
    Services,
    /// `endpoints`, `ep`.
    Endpoints,
    /// `networkpolicies`, `networkpolicy`, `netpol`.
    NetworkPolicies,
    /// `nodes`, `node`, `no`.
    Nodes,
}

impl Resource {
    fn parse(word: &str) -> Result<Resource, ParseError> {
        Ok(match word.to_ascii_lowercase().as_str() {
            "pods" | "pod" | "po" => Resource::Pods,
            "services" | "service" | "svc" => Resource::Services,
            "endpoints" | "endpoint" | "ep" => Resource::Endpoints,
            "networkpolicies" | "networkpolicy" | "netpol" | "netpols" => Resource::NetworkPolicies,
            "nodes" | "node" | "no" => Resource::Nodes,
            _ => {
                return err(format!(
                    "the server doesn't have a resource type \"{word}\" (kns knows pods, services, endpoints, networkpolicies, nodes)"
                ));
            }
        })
    }

    /// The kind stored for this resource.
    pub fn kind(self) -> &'static str {
        match self {
            Resource::Pods => "Pod",
            Resource::Services => "Service",
            Resource::Endpoints => "Endpoints",
            Resource::NetworkPolicies => "NetworkPolicy",
            Resource::Nodes => "Node",
        }
    }

    /// kubectl's plural (`pods`, `services`, ...), as its messages name it.
    pub fn plural(self) -> &'static str {
        match self {
            Resource::Pods => "pods",
            Resource::Services => "services",
            Resource::Endpoints => "endpoints",
            Resource::NetworkPolicies => "networkpolicies.networking.k8s.io",
            Resource::Nodes => "nodes",
        }
    }
}

/// Which namespaces a `get` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One namespace (`-n NS`, default `default`).
    Namespace(String),
    /// `-A`.
    All,
}

/// The kubectl subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kubectl {
    /// `kubectl get RESOURCE [NAME...] [-n NS | -A] [-o wide]`.
    Get {
        /// What to list.
        resource: Resource,
        /// Only these names (all when empty).
        names: Vec<String>,
        /// Which namespaces.
        scope: Scope,
        /// `-o wide`.
        wide: bool,
    },
    /// `kubectl apply -f PATH [-n NS]` (`-f -` reads a here-document).
    Apply {
        /// The file or directory, or `-`.
        file: String,
        /// Namespace for objects that name none.
        namespace: String,
    },
    /// `kubectl delete RESOURCE NAME... [-n NS]`.
    Delete {
        /// What to delete.
        resource: Resource,
        /// The names.
        names: Vec<String>,
        /// The namespace.
        namespace: String,
    },
    /// `kubectl exec POD [-n NS] [-it] -- TOOL ARGS...`.
    Exec {
        /// The pod's name.
        pod: String,
        /// Its namespace.
        namespace: String,
        /// The tool and its arguments.
        words: Vec<String>,
    },
}

/// Parses one line's words.
pub fn parse(words: &[String]) -> Result<Line, ParseError> {
    let Some(first) = words.first() else { return Ok(Line::Empty) };
    if let Some(op) = words.iter().find(|w| SHELL_OPERATORS.contains(&w.as_str())) {
        return err(format!(
            "kns shell runs one command per line, without pipes or redirections (`{op}`)"
        ));
    }
    let rest = &words[1..];
    match first.as_str() {
        "help" | "?" => Ok(Line::Help),
        "exit" | "quit" => Ok(Line::Exit),
        "use" => match rest {
            [] => Ok(Line::Use(None)),
            [target] => Ok(Line::Use(Some(target.clone()))),
            _ => err("usage: use POD|NODE|internet"),
        },
        "explain" => match rest {
            [from, to, port] => {
                let port =
                    port.parse().map_err(|e| ParseError(format!("explain: port `{port}`: {e}")))?;
                Ok(Line::Explain { from: from.clone(), to: to.clone(), port })
            }
            _ => err(
                "usage: explain FROM TO PORT (pods as ns/name or name, e.g. explain client web 80/TCP)",
            ),
        },
        "kubectl" | "k" => kubectl(rest).map(Line::Kubectl),
        "ip" if rest.len() >= 2 && rest[0] == "netns" && rest[1] == "exec" => match &rest[2..] {
            [netns, tool, ..] => {
                check_tool(tool)?;
                Ok(Line::NetnsExec { netns: netns.clone(), words: rest[3..].to_vec() })
            }
            _ => err("usage: ip netns exec NETNS COMMAND..."),
        },
        tool if TOOLS.contains(&tool) || tool == "sleep" => Ok(Line::Tool(words.to_vec())),
        other => err(format!("unknown command `{other}` (type `help` for the list)")),
    }
}

/// Whether `tool` runs inside a namespace.
pub fn check_tool(tool: &str) -> Result<(), ParseError> {
    if TOOLS.contains(&tool) || tool == "sleep" {
        Ok(())
    } else {
        err(format!("`{tool}`: no such command in kns (it runs: {})", TOOLS.join(", ")))
    }
}

/// Flags kubectl commands share.
#[derive(Debug, Default)]
struct Flags {
    namespace: Option<String>,
    all: bool,
    output: Option<String>,
    file: Option<String>,
    positional: Vec<String>,
    after_dashes: Option<Vec<String>>,
}

fn flags(words: &[String], allowed: &[&str]) -> Result<Flags, ParseError> {
    let mut f = Flags::default();
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        i += 1;
        let mut value = |name: &str, inline: Option<&str>| -> Result<String, ParseError> {
            if let Some(v) = inline {
                return Ok(v.to_string());
            }
            let v = words
                .get(i)
                .cloned()
                .ok_or_else(|| ParseError(format!("flag needs an argument: {name}")))?;
            i += 1;
            Ok(v)
        };
        let (name, inline) = match w.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (w, None),
        };
        let canonical = match name {
            "--" => {
                f.after_dashes = Some(words[i..].to_vec());
                break;
            }
            "-n" | "--namespace" => "-n",
            "-A" | "--all-namespaces" => "-A",
            "-o" | "--output" => "-o",
            "-f" | "--filename" => "-f",
            "-i" | "-t" | "-it" | "-ti" | "--stdin" | "--tty" => "-it",
            n if n.starts_with("-o") && n.len() > 2 => {
                let v = n[2..].trim_start_matches('=');
                if !allowed.contains(&"-o") {
                    return err(format!("unknown shorthand flag: 'o' in {n}"));
                }
                f.output = Some(v.to_string());
                continue;
            }
            n if n.starts_with("-n") && n.len() > 2 => {
                f.namespace = Some(n[2..].to_string());
                continue;
            }
            n if n.starts_with('-') && n.len() > 1 => return err(format!("unknown flag: {n}")),
            _ => {
                f.positional.push(w.to_string());
                continue;
            }
        };
        if !allowed.contains(&canonical) {
            return err(format!("unknown flag: {name}"));
        }
        match canonical {
            "-n" => f.namespace = Some(value(name, inline)?),
            "-A" => f.all = true,
            "-o" => f.output = Some(value(name, inline)?),
            "-f" => f.file = Some(value(name, inline)?),
            _ => {}
        }
    }
    Ok(f)
}

fn kubectl(words: &[String]) -> Result<Kubectl, ParseError> {
    let Some(verb) = words.first() else {
        return err("usage: kubectl get|apply|delete|exec ... (type `help`)");
    };
    let rest = &words[1..];
    match verb.as_str() {
        "get" => {
            let f = flags(rest, &["-n", "-A", "-o"])?;
            let Some((resource, names)) = f.positional.split_first() else {
                return err(
                    "usage: kubectl get pods|svc|endpoints|netpol|nodes [-n NS|-A] [-o wide]",
                );
            };
            let wide = match f.output.as_deref() {
                None => false,
                Some("wide") => true,
                Some(other) => {
                    return err(format!(
                        "kubectl get: output format `{other}` is not supported (only `-o wide`)"
                    ));
                }
            };
            let scope = if f.all {
                Scope::All
            } else {
                Scope::Namespace(f.namespace.unwrap_or_else(|| "default".into()))
            };
            Ok(Kubectl::Get {
                resource: Resource::parse(resource)?,
                names: names.to_vec(),
                scope,
                wide,
            })
        }
        "apply" => {
            let f = flags(rest, &["-n", "-f"])?;
            let Some(file) = f.file else {
                return err("usage: kubectl apply -f PATH (or -f - <<EOF ... EOF)");
            };
            if let Some(extra) = f.positional.first() {
                return err(format!("kubectl apply: unexpected argument `{extra}`"));
            }
            Ok(Kubectl::Apply { file, namespace: f.namespace.unwrap_or_else(|| "default".into()) })
        }
        "delete" => {
            let f = flags(rest, &["-n"])?;
            let mut positional = f.positional.clone();
            // `kubectl delete pod/web` names the type with each object.
            if let [single] = positional.as_slice()
                && let Some((r, n)) = single.split_once('/')
            {
                positional = vec![r.to_string(), n.to_string()];
            }
            let Some((resource, names)) = positional.split_first() else {
                return err("usage: kubectl delete pod|svc|netpol NAME... [-n NS]");
            };
            let resource = Resource::parse(resource)?;
            if matches!(resource, Resource::Endpoints | Resource::Nodes) {
                return err(format!(
                    "kubectl delete: kns deletes pods, services and networkpolicies, not {}",
                    resource.plural()
                ));
            }
            if names.is_empty() {
                return err("kubectl delete: name the objects to delete");
            }
            Ok(Kubectl::Delete {
                resource,
                names: names.to_vec(),
                namespace: f.namespace.unwrap_or_else(|| "default".into()),
            })
        }
        "exec" => {
            let f = flags(rest, &["-n", "-it"])?;
            let Some(words) = f.after_dashes.filter(|w| !w.is_empty()) else {
                return err("usage: kubectl exec POD [-n NS] -- COMMAND [ARGS...]");
            };
            let pod = match f.positional.as_slice() {
                [pod] => pod.strip_prefix("pod/").unwrap_or(pod).to_string(),
                _ => return err("usage: kubectl exec POD [-n NS] -- COMMAND [ARGS...]"),
            };
            check_tool(&words[0])?;
            Ok(Kubectl::Exec {
                pod,
                namespace: f.namespace.unwrap_or_else(|| "default".into()),
                words,
            })
        }
        other => {
            err(format!("kubectl: unknown command `{other}` (kns knows get, apply, delete, exec)"))
        }
    }
}

/// Joins words back into one line that [`kns_sim::cmd::tokenize`] splits the same way.
pub fn join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars().all(|c| !c.is_whitespace() && !matches!(c, '\'' | '"' | '\\' | '#'));
            if plain { w.clone() } else { format!("'{}'", w.replace('\'', r"'\''")) }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kns_sim::cmd::tokenize;

    fn p(line: &str) -> Result<Line, ParseError> {
        parse(&tokenize(line).unwrap())
    }

    #[test]
    fn kubectl_get_reads_its_flags() {
        assert_eq!(
            p("kubectl get po -A -o wide").unwrap(),
            Line::Kubectl(Kubectl::Get {
                resource: Resource::Pods,
                names: vec![],
                scope: Scope::All,
                wide: true
            })
        );
        assert_eq!(
            p("kubectl get svc web --namespace=ops -owide").unwrap(),
            Line::Kubectl(Kubectl::Get {
                resource: Resource::Services,
                names: vec!["web".into()],
                scope: Scope::Namespace("ops".into()),
                wide: true
            })
        );
        assert!(p("kubectl get pods -o json").unwrap_err().0.contains("only `-o wide`"));
        assert!(p("kubectl get widgets").unwrap_err().0.contains("resource type \"widgets\""));
        assert_eq!(p("kubectl get pods -x").unwrap_err().0, "unknown flag: -x");
    }

    #[test]
    fn kubectl_exec_apply_delete() {
        assert_eq!(
            p("kubectl exec -it client -n ops -- ping -c 1 web").unwrap(),
            Line::Kubectl(Kubectl::Exec {
                pod: "client".into(),
                namespace: "ops".into(),
                words: ["ping", "-c", "1", "web"].map(String::from).to_vec(),
            })
        );
        assert!(p("kubectl exec client ping web").is_err());
        assert!(p("kubectl exec client -- bash").unwrap_err().0.contains("no such command"));
        assert_eq!(
            p("kubectl apply -f deny.yaml").unwrap(),
            Line::Kubectl(Kubectl::Apply { file: "deny.yaml".into(), namespace: "default".into() })
        );
        assert_eq!(
            p("kubectl delete netpol/deny").unwrap(),
            Line::Kubectl(Kubectl::Delete {
                resource: Resource::NetworkPolicies,
                names: vec!["deny".into()],
                namespace: "default".into()
            })
        );
        assert!(p("kubectl delete pod").is_err());
    }

    #[test]
    fn tools_netns_exec_and_the_rest() {
        assert_eq!(p("  # a comment").unwrap(), Line::Empty);
        assert_eq!(
            p("ping -c 1 10.0.0.1").unwrap(),
            Line::Tool(tokenize("ping -c 1 10.0.0.1").unwrap())
        );
        assert_eq!(
            p("ip netns exec default.web ip addr").unwrap(),
            Line::NetnsExec {
                netns: "default.web".into(),
                words: vec!["ip".into(), "addr".into()]
            }
        );
        assert_eq!(
            p("frobnicate").unwrap_err().0,
            "unknown command `frobnicate` (type `help` for the list)"
        );
        assert!(matches!(p("explain a b 80").unwrap(), Line::Explain { .. }));
        assert_eq!(
            p("iptables -S | head").unwrap_err().0,
            "kns shell runs one command per line, without pipes or redirections (`|`)"
        );
        assert!(p("explain a b eighty").unwrap_err().0.starts_with("explain: port `eighty`"));
    }

    #[test]
    fn join_round_trips_through_the_tokenizer() {
        let words: Vec<String> =
            ["curl", "http://x/a b", "it's", "#x", ""].map(String::from).to_vec();
        assert_eq!(tokenize(&join(&words)).unwrap(), words);
    }
}
