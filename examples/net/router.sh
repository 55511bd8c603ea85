# Two subnets joined by a router: a namespace with two interfaces and ip_forward on.
# Without the routes on the hosts, each side has no way to reach the other subnet.
ip netns add left
ip netns add router
ip netns add right
ip link add l0 type veth peer name r0
ip link add l1 type veth peer name r1
ip link set l0 netns left
ip link set r0 netns router
ip link set r1 netns router
ip link set l1 netns right
ip -n left addr add 10.0.1.2/24 dev l0
ip -n router addr add 10.0.1.1/24 dev r0
ip -n router addr add 10.0.2.1/24 dev r1
ip -n right addr add 10.0.2.2/24 dev l1
ip -n left link set l0 up
ip -n router link set r0 up
ip -n router link set r1 up
ip -n right link set l1 up
# No route yet: the kernel answers "Network is unreachable".
ip netns exec left ping -c 1 10.0.2.2
ip -n left route add 10.0.2.0/24 via 10.0.1.1
ip -n right route add default via 10.0.2.1
# Routes exist, but the router does not forward until ip_forward is on.
ip netns exec left ping -c 1 -W 1 10.0.2.2
ip netns exec router sysctl -w net.ipv4.ip_forward=1
ip netns exec left ping -c 2 10.0.2.2
ip -n left route get 10.0.2.2
