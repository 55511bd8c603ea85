# Traceroute across two routers: each router decrements the TTL and answers "time exceeded"
# when it reaches zero, which is how traceroute discovers the path hop by hop.
ip netns add a
ip netns add r1
ip netns add r2
ip netns add b
ip link add a0 type veth peer name r1a
ip link add r1b type veth peer name r2a
ip link add r2b type veth peer name b0
ip link set a0 netns a
ip link set r1a netns r1
ip link set r1b netns r1
ip link set r2a netns r2
ip link set r2b netns r2
ip link set b0 netns b
ip -n a addr add 10.0.1.2/24 dev a0
ip -n r1 addr add 10.0.1.1/24 dev r1a
ip -n r1 addr add 10.0.12.1/24 dev r1b
ip -n r2 addr add 10.0.12.2/24 dev r2a
ip -n r2 addr add 10.0.2.1/24 dev r2b
ip -n b addr add 10.0.2.2/24 dev b0
ip -n a link set a0 up
ip -n r1 link set r1a up
ip -n r1 link set r1b up
ip -n r2 link set r2a up
ip -n r2 link set r2b up
ip -n b link set b0 up
ip -n a route add default via 10.0.1.1
ip -n r1 route add 10.0.2.0/24 via 10.0.12.2
ip -n r2 route add 10.0.1.0/24 via 10.0.12.1
ip -n b route add default via 10.0.2.1
ip netns exec r1 sysctl -w net.ipv4.ip_forward=1
ip netns exec r2 sysctl -w net.ipv4.ip_forward=1
ip netns exec a traceroute -n 10.0.2.2
ip netns exec a ping -c 1 10.0.2.2
