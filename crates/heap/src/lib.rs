//! storelab's PostgreSQL-style heap engine (design doc to come with the engine).

pub mod heap_page;
