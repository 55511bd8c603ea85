# A DNAT port forward: connections to the node's public address on port 8080 are sent to a
# server in a private namespace on port 80, the way a NodePort reaches a pod.
ip netns add server
ip netns add node
ip netns add client
ip link add eth0 type veth peer name cni0
ip link add eth1 type veth peer name wan0
ip link set eth0 netns server
ip link set cni0 netns node
ip link set eth1 netns node
ip link set wan0 netns client
ip -n server addr add 10.244.1.2/24 dev eth0
ip -n node addr add 10.244.1.1/24 dev cni0
ip -n node addr add 203.0.113.1/24 dev eth1
ip -n client addr add 203.0.113.2/24 dev wan0
ip -n server link set eth0 up
ip -n node link set cni0 up
ip -n node link set eth1 up
ip -n client link set wan0 up
ip -n server route add default via 10.244.1.1
ip netns exec node sysctl -w net.ipv4.ip_forward=1
ip netns exec server nc -l -p 80
# Before the rule, nothing listens on the node's port 8080: the connection is refused.
ip netns exec client nc -w 2 203.0.113.1 8080
ip netns exec node iptables -t nat -A PREROUTING -i eth1 -p tcp --dport 8080 -j DNAT --to-destination 10.244.1.2:80
ip netns exec client nc -w 2 203.0.113.1 8080
ip netns exec node iptables -t nat -S
ip netns exec node conntrack -L
