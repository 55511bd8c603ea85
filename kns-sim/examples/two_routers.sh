# Two routers in a line: src - r1 - r2 - dst, with routes both ways and forwarding on.
# Shared by the traceroute example and the dataplane tests.
ip netns add src
ip netns add r1
ip netns add r2
ip netns add dst
ip -n src link add eth0 type veth peer name west netns r1
ip -n r1 link add east type veth peer name west netns r2
ip -n r2 link add east type veth peer name eth0 netns dst
ip -n src addr add 10.1.0.2/24 dev eth0
ip -n r1 addr add 10.1.0.1/24 dev west
ip -n r1 addr add 10.2.0.1/24 dev east
ip -n r2 addr add 10.2.0.2/24 dev west
ip -n r2 addr add 10.3.0.1/24 dev east
ip -n dst addr add 10.3.0.2/24 dev eth0
ip -n src link set eth0 up
ip -n r1 link set west up
ip -n r1 link set east up
ip -n r2 link set west up
ip -n r2 link set east up
ip -n dst link set eth0 up
ip -n src route add default via 10.1.0.1
ip -n r1 route add 10.3.0.0/24 via 10.2.0.2
ip -n r2 route add 10.1.0.0/24 via 10.2.0.1
ip -n dst route add default via 10.3.0.1
ip netns exec r1 sysctl -w net.ipv4.ip_forward=1
ip netns exec r2 sysctl -w net.ipv4.ip_forward=1
