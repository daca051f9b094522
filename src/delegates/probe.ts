// Looking inside the pod's network namespace without shelling out to `ip`.
import { listLinkNames } from '../netns/probe';

/** Names of the links in `netnsPath`; an empty set when the path is empty. */
export function linkNamesIn(netnsPath: string): Set<string> {
  if (netnsPath === '') return new Set();
  return new Set(listLinkNames(netnsPath));
}
