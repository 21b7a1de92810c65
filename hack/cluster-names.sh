# Names of a test cluster's network pieces, derived from its folder ($dir)
# so that clusters in different folders never clash. Sourced by the
# cluster-*.sh scripts. Interface names stay under 16 characters.
hash=$(printf %s "$dir" | md5sum | cut -c1-6)
bridge=rxbr-$hash
subnet=10.213.$((16#${hash:0:2}))
netns() { echo "rx-$hash-h$1"; }
veth() { echo "rxv$hash$1"; }
hostip() { echo "$subnet.$((10 + $1))"; }
