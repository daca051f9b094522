// The netdev group DEL moves a pod's selected links into right before deleting them all in one
// RTM_DELLINK (IFLA_GROUP) request (src/delegates/teardown.ts): the kernel's per-device teardown
// (synchronize_net) is then paid once instead of once per link. A group of its own, used for
// nothing else and set only at that moment, so the request can sweep along no other link: not
// one in the default group, nor one a chained plugin (tuning, bandwidth) tagged and still needs
// for its own DEL.
export const TEARDOWN_GROUP = 0x706c79;
