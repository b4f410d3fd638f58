-- Investor concentration at the end of each day from {from} to {to}, per fund and per person (one investor's accounts
-- at every partner together, by investor key): one row per bucket of holding size
-- ('<1k', '1k-10k', '10k-100k', '100k-1m', '>=1m' yuan; empty buckets omitted), one row
-- 'top_n' for the concentration_top_n largest investors and one row 'all'; `holders` counts
-- investors. share_pct = bucket units / fund units in percent (2 decimals, rounded down). The
-- buckets come from the day's investors by size of holding (holding_sizes), aggregated side by
-- side, then turned into rows; the largest investors from the holdings per person
-- (investor_holdings) above a cutoff. Both are built with the day's daily_holdings.
SELECT fund_code, day, b.1 AS bucket, b.2 AS holders, b.3 AS units,
       if(total > 0, CAST(b.3 * 10000 / total AS Decimal(18, 2)) / 100, CAST(0 AS Decimal(18, 2))) AS share_pct
FROM
(
    SELECT fund_code, day, total,
           [('<1k', n1, u1), ('1k-10k', n2, u2), ('10k-100k', n3, u3), ('100k-1m', n4, u4),
            ('>=1m', n5, u5), ('all', n_all, total),
            -- In fen: arraySum takes no Decimal on 18.16.
            ('top_n', toUInt64(length(top)), CAST(toDecimal64(arraySum(top), 2) / 100 AS Decimal(38, 2)))]
               AS bucket_rows
    FROM
    (
        SELECT fund_code, day,
               sumIf(investors, size_from = 0) AS n1, sumIf(units, size_from = 0) AS u1,
               sumIf(investors, size_from = 1000) AS n2, sumIf(units, size_from = 1000) AS u2,
               sumIf(investors, size_from = 10000) AS n3, sumIf(units, size_from = 10000) AS u3,
               sumIf(investors, size_from = 100000) AS n4, sumIf(units, size_from = 100000) AS u4,
               sumIf(investors, size_from >= 1000000) AS n5,
               sumIf(units, size_from >= 1000000) AS u5,
               sum(investors) AS n_all, sum(units) AS total
        FROM holding_sizes
        WHERE day >= {from:Date} AND day <= {to:Date}
        GROUP BY fund_code, day
    ) AS buckets
    ALL LEFT JOIN
    (
        -- The largest holders' units, in fen. Only holdings at or above a cutoff are sorted:
        -- the highest size class that at least concentration_top_n of every fund's investors
        -- reach on every day (0 if a fund has fewer), so the top ones are all among them and
        -- a few thousand values are sorted instead of every investor's.
        SELECT fund_code, day,
               arraySlice(arrayReverseSort(groupArray(toInt64(units * 100))), 1,
                          toUInt64((SELECT concentration_top_n FROM report_settings))) AS top
        FROM investor_holdings
        WHERE day >= {from:Date} AND day <= {to:Date}
          AND units >=
          (
              SELECT min(cutoff) FROM
              (
                  SELECT multiIf(sumIf(investors, size_from >= 100000000) >= n, 100000000,
                                 sumIf(investors, size_from >= 10000000) >= n, 10000000,
                                 sumIf(investors, size_from >= 1000000) >= n, 1000000,
                                 sumIf(investors, size_from >= 100000) >= n, 100000,
                                 sumIf(investors, size_from >= 10000) >= n, 10000,
                                 sumIf(investors, size_from >= 1000) >= n, 1000, 0) AS cutoff,
                         (SELECT concentration_top_n FROM report_settings) AS n
                  FROM holding_sizes
                  WHERE day >= {from:Date} AND day <= {to:Date}
                  GROUP BY fund_code, day
              )
          )
        GROUP BY fund_code, day
    ) AS largest USING fund_code, day
)
ARRAY JOIN bucket_rows AS b
WHERE b.2 > 0 OR b.1 IN ('all', 'top_n')
