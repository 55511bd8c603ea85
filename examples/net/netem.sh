# A slow, lossy link: `tc qdisc ... netem` delays and drops frames as they leave a device.
# Run it: cargo run -p kns-scenarios -- net -f examples/net/netem.sh
ip netns add red
ip netns add blue
ip link add veth-red type veth peer name veth-blue
ip link set veth-red netns red
ip link set veth-blue netns blue
ip -n red addr add 10.0.0.1/24 dev veth-red
ip -n blue addr add 10.0.0.2/24 dev veth-blue
ip -n red link set veth-red up
ip -n blue link set veth-blue up
# netem acts on the frames a device sends, so give both ends 20ms and 10% loss:
# a round trip then takes about 40ms, and about one ping in five loses its request or reply.
ip netns exec red tc qdisc add dev veth-red root netem delay 20ms loss 10%
ip netns exec blue tc qdisc add dev veth-blue root netem delay 20ms loss 10%
tc -n red qdisc show dev veth-red
# The first reply takes twice as long: red must learn blue's MAC first, and the ARP request
# and reply cross the slow link too.
ip netns exec red ping -c 20 -i 0.2 10.0.0.2
# Remove the qdiscs: the link is ideal again (no delay, no loss).
ip netns exec red tc qdisc del dev veth-red root
ip netns exec blue tc qdisc del dev veth-blue root
tc -n red qdisc show
ip netns exec red ping -c 4 10.0.0.2
