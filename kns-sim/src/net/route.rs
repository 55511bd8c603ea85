//! A namespace's routing table: routes keyed by prefix, longest-prefix match, then lowest metric.
//! Pure data; the namespace keeps it consistent with its interfaces.

use std::net::IpAddr;

use ipnet::IpNet;

use super::IfaceId;

/// Who installed a route, as iproute2 shows it (`proto kernel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteProto {
    /// Added by the kernel for an address's prefix (a connected route).
    Kernel,
    /// Added by a user (`ip route add`; iproute2's default `proto boot`, not printed).
    Boot,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix (`0.0.0.0/0` is the default route).
    pub dst: IpNet,
    /// Gateway, if the destination is not on-link.
    pub via: Option<IpAddr>,
    /// Output interface.
    pub dev: IfaceId,
    /// Metric: among equal prefixes the lowest wins.
    pub metric: u32,
    /// Preferred source address.
    pub src: Option<IpAddr>,
    /// Who added it.
    pub proto: RouteProto,
    /// Added with `onlink`: the gateway is on `dev`'s link without a connected route to it.
    pub onlink: bool,
}

impl Route {
    /// Whether this is a default route.
    pub fn is_default(&self) -> bool {
        self.dst.prefix_len() == 0
    }
}

/// The routes of one namespace, kept in iproute2's display order (prefix address, then length,
/// then metric).
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// `add` found an equal route already present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteExists;

impl RouteTable {
    /// All routes in display order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Adds `route`; with `replace` an existing route with the same prefix and metric is
    /// overwritten, otherwise it is an error.
    pub fn add(&mut self, route: Route, replace: bool) -> Result<(), RouteExists> {
        let same = |r: &Route| {
            r.dst == route.dst
                && r.metric == route.metric
                && r.dst.addr().is_ipv4() == route.dst.addr().is_ipv4()
        };
        if let Some(pos) = self.routes.iter().position(same) {
            if !replace {
                return Err(RouteExists);
            }
            self.routes[pos] = route;
            return Ok(());
        }
        let key = |r: &Route| (r.dst.addr(), r.dst.prefix_len(), r.metric);
        let pos = self.routes.partition_point(|r| key(r) < key(&route));
        self.routes.insert(pos, route);
        Ok(())
    }

    /// Removes the routes for which `matches` is true; returns how many.
    pub fn remove_where(&mut self, mut matches: impl FnMut(&Route) -> bool) -> usize {
        let before = self.routes.len();
        self.routes.retain(|r| !matches(r));
        before - self.routes.len()
    }

    /// The best route to `dst`: longest prefix, then lowest metric, then first added.
    pub fn lookup(&self, dst: IpAddr) -> Option<&Route> {
        let mut best: Option<&Route> = None;
        for r in &self.routes {
            if !r.dst.contains(&dst) {
                continue;
            }
            best = match best {
                Some(b)
                    if (b.dst.prefix_len(), std::cmp::Reverse(b.metric))
                        >= (r.dst.prefix_len(), std::cmp::Reverse(r.metric)) =>
                {
                    Some(b)
                }
                _ => Some(r),
            };
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, metric: u32, dev: u32) -> Route {
        Route {
            dst: dst.parse().unwrap(),
            via: None,
            dev: IfaceId(dev),
            metric,
            src: None,
            proto: RouteProto::Boot,
            onlink: false,
        }
    }

    #[test]
    fn longest_prefix_then_metric() {
        let mut t = RouteTable::default();
        t.add(route("0.0.0.0/0", 0, 1), false).unwrap();
        t.add(route("10.0.0.0/8", 0, 2), false).unwrap();
        t.add(route("10.1.0.0/16", 100, 3), false).unwrap();
        t.add(route("10.1.0.0/16", 10, 4), false).unwrap();
        assert_eq!(t.add(route("10.0.0.0/8", 0, 9), false), Err(RouteExists));
        let dev = |t: &RouteTable, a: &str| t.lookup(a.parse().unwrap()).map(|r| r.dev.0);
        assert_eq!(dev(&t, "10.1.2.3"), Some(4));
        assert_eq!(dev(&t, "10.2.0.1"), Some(2));
        assert_eq!(dev(&t, "192.0.2.1"), Some(1));
        assert_eq!(t.routes()[0].dst.to_string(), "0.0.0.0/0");
        t.remove_where(|r| r.dst.prefix_len() == 0);
        assert_eq!(dev(&t, "192.0.2.1"), None);
        t.add(route("10.0.0.0/8", 0, 7), true).unwrap();
        assert_eq!(dev(&t, "10.2.0.1"), Some(7));
    }
}
