package router

import (
	"testing"
)

// benchQueries are what GORM and sqlx send, verbatim.
var benchQueries = []struct{ name, sql string }{
	{"gorm_first", `SELECT * FROM "users" WHERE "users"."id" = $1 AND "users"."deleted_at" IS NULL ORDER BY "users"."id" LIMIT $2`},
	{"gorm_find", `SELECT * FROM "users" WHERE name = $1 AND age > $2 AND "users"."deleted_at" IS NULL`},
	{"gorm_count", `SELECT count(*) FROM "users" WHERE "users"."deleted_at" IS NULL`},
	{"gorm_join", `SELECT "users"."id","users"."name","Company"."id" AS "Company__id","Company"."name" AS "Company__name" FROM "users" LEFT JOIN "companies" "Company" ON "users"."company_id" = "Company"."id" WHERE "users"."deleted_at" IS NULL`},
	{"gorm_create", `INSERT INTO "users" ("created_at","updated_at","deleted_at","name","email","age","birthday") VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING "id"`},
	{"gorm_save", `UPDATE "users" SET "created_at"=$1,"updated_at"=$2,"deleted_at"=$3,"name"=$4,"email"=$5,"age"=$6 WHERE "users"."deleted_at" IS NULL AND "id" = $7`},
	{"gorm_delete", `UPDATE "users" SET "deleted_at"=$1 WHERE "users"."id" = $2 AND "users"."deleted_at" IS NULL`},
	{"gorm_lock", `SELECT * FROM "users" WHERE "users"."id" = $1 AND "users"."deleted_at" IS NULL ORDER BY "users"."id" LIMIT $2 FOR UPDATE`},
	{"sqlx_get", `SELECT id, name, email FROM users WHERE email = $1`},
	{"sqlx_in", `SELECT * FROM users WHERE id IN ($1, $2, $3, $4, $5)`},
	{"sqlx_named_insert", `INSERT INTO person (first_name, last_name, email) VALUES ($1, $2, $3)`},
	{"cte", `WITH recent AS (SELECT user_id, max(created_at) AS at FROM orders GROUP BY user_id) SELECT u.id, r.at FROM users u JOIN recent r ON r.user_id = u.id WHERE r.at > now() - interval '1 day'`},
}

func BenchmarkAnalyze(b *testing.B) {
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(q.sql)))
			for b.Loop() {
				Analyze(q.sql)
			}
		})
	}
}

// BenchmarkAnalyzeCorpus classifies every statement of testdata/corpus.sql
// once per op: the odd SQL, not the ORM's.
func BenchmarkAnalyzeCorpus(b *testing.B) {
	recs := loadCorpus(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range recs {
			AnalyzeOpts(r.SQL, r.Opts)
		}
	}
}

func BenchmarkClassifierCached(b *testing.B) {
	c := NewClassifier(1024)
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			c.Analyze(q.sql)
			for b.Loop() {
				c.Analyze(q.sql)
			}
		})
	}
}

func BenchmarkClassifierCachedParallel(b *testing.B) {
	c := NewClassifier(1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Analyze(benchQueries[i%len(benchQueries)].sql)
			i++
		}
	})
}
