"""The pure core: parsing, dates, search, rendering, schedule, pacing, texts. No I/O to Telegram or SQLite."""
