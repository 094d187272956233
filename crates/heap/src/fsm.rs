//! The free space map: for each heap page, roughly how much room it has.
//!
//! PostgreSQL keeps one byte per page (free space in 1/256ths of a page) in a separate fork
//! arranged as a tree of max-values, so "a page with at least N bytes" is found in a few
//! steps. Ours is the same idea in memory: a byte per page and a byte per group of
//! [`FSM_GROUP_PAGES`] pages holding the group's maximum, searched group first.
//!
//! Like PostgreSQL's, the map is a hint: it is not logged, a page may have less room than it
//! says (the inserter then updates the entry and looks again) or more. It is rebuilt from the
//! pages when a table is opened (one pass over the heap, which also counts the live rows);
//! then writers update it as they fill and prune pages, and VACUUM, which visits every page,
//! brings it up to date (PostgreSQL's FSM is kept in a fork that VACUUM maintains).

use parking_lot::Mutex;

use crate::heap_page::{fsm_category, fsm_category_needed, tuple_size_max};

/// Pages per group of the two-level map.
pub const FSM_GROUP_PAGES: usize = 256;

/// The category recorded for a page with `free_bytes` free.
fn category(free_bytes: usize, page_size: usize) -> u8 {
    fsm_category(free_bytes, page_size)
}

/// The smallest category whose pages surely have `needed` bytes; a request larger than any
/// page can hold asks for an empty page.
fn category_needed(needed: usize, page_size: usize) -> u8 {
    fsm_category_needed(needed.min(tuple_size_max(page_size)), page_size)
}

#[derive(Debug, Default)]
struct Map {
    pages: Vec<u8>,
    groups: Vec<u8>,
}

/// The free space map of one heap file.
#[derive(Debug)]
pub struct FreeSpaceMap {
    page_size: usize,
    map: Mutex<Map>,
}

impl FreeSpaceMap {
    /// An empty map (every page unknown, taken as full).
    pub fn new(page_size: usize) -> FreeSpaceMap {
        FreeSpaceMap {
            page_size,
            map: Mutex::new(Map::default()),
        }
    }

    /// Records that `page` has `free_bytes` free.
    pub fn update(&self, page: u64, free_bytes: usize) {
        let c = category(free_bytes, self.page_size);
        let page = page as usize;
        let mut m = self.map.lock();
        if m.pages.len() <= page {
            m.pages.resize(page + 1, 0);
            let groups = m.pages.len().div_ceil(FSM_GROUP_PAGES);
            m.groups.resize(groups, 0);
        }
        m.pages[page] = c;
        let g = page / FSM_GROUP_PAGES;
        let start = g * FSM_GROUP_PAGES;
        let end = (start + FSM_GROUP_PAGES).min(m.pages.len());
        let max = m.pages[start..end].iter().copied().max().unwrap_or(0);
        m.groups[g] = max;
    }

    /// A page that has (by the map) at least `needed` bytes free, lowest first.
    pub fn find(&self, needed: usize) -> Option<u64> {
        let want = category_needed(needed, self.page_size).max(1);
        let m = self.map.lock();
        let g = m.groups.iter().position(|&c| c >= want)?;
        let start = g * FSM_GROUP_PAGES;
        let end = (start + FSM_GROUP_PAGES).min(m.pages.len());
        m.pages[start..end]
            .iter()
            .position(|&c| c >= want)
            .map(|i| (start + i) as u64)
    }

    /// Pages the map knows of with at least one category of free space.
    pub fn pages_with_space(&self) -> u64 {
        self.map.lock().pages.iter().filter(|&&c| c > 0).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page is found only once it is recorded with enough room, lowest page first, and is
    /// no longer found once it is recorded as full.
    #[test]
    fn find_returns_lowest_page_with_room() {
        let fsm = FreeSpaceMap::new(8192);
        assert_eq!(fsm.find(100), None);
        fsm.update(700, 4000);
        fsm.update(3, 50);
        fsm.update(5, 1000);
        assert_eq!(fsm.find(100), Some(5));
        assert_eq!(fsm.find(2000), Some(700));
        assert_eq!(fsm.find(5000), None);
        fsm.update(5, 0);
        assert_eq!(fsm.find(100), Some(700));
        assert_eq!(fsm.pages_with_space(), 2);
    }

    /// Categories round down when recording and up when searching, so a page found has the
    /// room asked for.
    #[test]
    fn categories_never_promise_more_than_recorded() {
        for free in [0usize, 31, 32, 33, 100, 4096, 8191] {
            for needed in [1usize, 32, 33, 100, 4096] {
                let fsm = FreeSpaceMap::new(8192);
                fsm.update(0, free);
                if fsm.find(needed).is_some() {
                    assert!(free >= needed, "free {free}, needed {needed}");
                }
            }
        }
    }
}
