# Three namespaces plugged into one Linux bridge: a virtual switch, like the one a CNI plugin
# builds on every node (cni0, docker0). The bridge learns which MAC sits behind which port.
ip netns add red
ip netns add green
ip netns add blue
ip link add v-net-0 type bridge
ip link set dev v-net-0 up
ip addr add 10.0.0.254/24 dev v-net-0
ip link add veth-red type veth peer name veth-red-br
ip link add veth-green type veth peer name veth-green-br
ip link add veth-blue type veth peer name veth-blue-br
ip link set veth-red netns red
ip link set veth-green netns green
ip link set veth-blue netns blue
ip link set veth-red-br master v-net-0
ip link set veth-green-br master v-net-0
ip link set veth-blue-br master v-net-0
ip link set veth-red-br up
ip link set veth-green-br up
ip link set veth-blue-br up
ip -n red addr add 10.0.0.1/24 dev veth-red
ip -n green addr add 10.0.0.2/24 dev veth-green
ip -n blue addr add 10.0.0.3/24 dev veth-blue
ip -n red link set veth-red up
ip -n green link set veth-green up
ip -n blue link set veth-blue up
ip netns exec red ping -c 2 10.0.0.2
ip netns exec red ping -c 2 10.0.0.3
ip netns exec blue ping -c 2 10.0.0.2
# The host reaches every namespace through the bridge's own address.
ping -c 1 10.0.0.1
bridge fdb show
