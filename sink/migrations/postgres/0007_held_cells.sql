-- Cells the fold holds back: adding their pending deltas would take a
-- stored value beyond bigint (about 92 million maximal events in one cell,
-- such as a country's yearly total: a producer stuck in a loop). The fold
-- leaves the deltas of such a cell pending and folds everything else; the
-- views, which sum cells and deltas as numeric, stay exact. A held cell is
-- tried again at every fold and released once its sum fits (corrections or
-- withdrawals of the runaway records bring it back). docs/operations.md,
-- "A held cell", says what an operator does.
--
-- Held by (deltas table, owner, metric, year): the owner is the deltas'
-- region_code (daily, regional) or program_id (program). A year holds every
-- finer period of that owner and metric, since its cell is their sum.
CREATE TABLE outreach.held_cells (
    deltas  text COLLATE "C" NOT NULL,
    owner   text COLLATE "C" NOT NULL,
    metric  text COLLATE "C" NOT NULL,
    year    date NOT NULL,
    -- Hundredths, when first held: the stored cell and the pending sum.
    stored  numeric NOT NULL,
    pending numeric NOT NULL,
    held_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (deltas, owner, metric, year)
);
