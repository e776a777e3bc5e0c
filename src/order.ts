// One string order for everything podvisor sorts: by UTF-16 code unit, as Go compares strings
// (so lists come out as kubectl and the API server would order them) and whatever the locale.
// localeCompare would also page in ICU's collation data: 8 MB of RSS on a small device.

/** Compares two strings by code unit: a sort comparator. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
