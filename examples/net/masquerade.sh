# A private subnet reaching the outside through MASQUERADE (source NAT to the router's address),
# as a node does for pods whose addresses are not routable outside the cluster.
ip netns add pod
ip netns add node
ip netns add internet
ip link add eth0 type veth peer name cni0
ip link add eth1 type veth peer name wan0
ip link set eth0 netns pod
ip link set cni0 netns node
ip link set eth1 netns node
ip link set wan0 netns internet
ip -n pod addr add 10.244.1.2/24 dev eth0
ip -n node addr add 10.244.1.1/24 dev cni0
ip -n node addr add 203.0.113.1/24 dev eth1
ip -n internet addr add 203.0.113.2/24 dev wan0
ip -n pod link set eth0 up
ip -n node link set cni0 up
ip -n node link set eth1 up
ip -n internet link set wan0 up
ip -n pod route add default via 10.244.1.1
ip netns exec node sysctl -w net.ipv4.ip_forward=1
# The internet has no route back to 10.244.1.0/24: replies are lost.
ip netns exec pod ping -c 1 -W 1 203.0.113.2
ip netns exec node iptables -t nat -A POSTROUTING -s 10.244.1.0/24 -o eth1 -j MASQUERADE
# Now the node rewrites the source to 203.0.113.1 and reverses it on the replies.
ip netns exec pod ping -c 2 203.0.113.2
ip netns exec node iptables -t nat -L -n -v
ip netns exec node conntrack -L
