// One-shot questions about a namespace for callers that hold no handle (src/delegates).
import { listLinks } from './links';
import { Netns } from './netns';

/** Names of the links in the namespace at netnsPath. */
export function listLinkNames(netnsPath: string): string[] {
  return Netns.with(netnsPath, (ns) => listLinks(ns).map((l) => l.name));
}
