// Live fragments: follows the event streams an element names (see parts/summary.html).
