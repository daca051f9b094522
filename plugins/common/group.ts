// Container-side links the built-in plugins create carry this netdev group, so the meta-plugin can
// delete all of a pod's links in one RTM_DELLINK (IFLA_GROUP) request: the kernel's per-device
// teardown (synchronize_net) is then paid once instead of once per link. Host-device links never
// get it: deleting a physical device would destroy it instead of giving it back to the host.
export const POD_LINK_GROUP = 0x706c78; // "plx"

// The group DEL moves a pod's selected links into just before deleting them all in one request.
// Separate from POD_LINK_GROUP so that a tagged link whose chain must keep it for its own DEL
// (tuning, bandwidth) is never swept along.
export const TEARDOWN_GROUP = 0x706c79;
