"""Fill MaterialOrigin.campaign / candidate / dft_job from the ids that ``details`` held.

A migration of its own: in 0005's transaction the UPDATE's foreign-key checks (deferred) would still be pending when
Django creates the columns' indexes, which PostgreSQL refuses ("pending trigger events").
"""

from django.db import migrations

# Copy each id from details into its column where the row it names still exists; details keep what they hold.
COPY_FROM_DETAILS = [
    "UPDATE catalog_materialorigin o SET campaign_id = (o.details->>'campaign')::bigint "
    "WHERE jsonb_typeof(o.details->'campaign') = 'number' "
    "AND EXISTS (SELECT 1 FROM discovery_campaign t WHERE t.id = (o.details->>'campaign')::bigint)",
    "UPDATE catalog_materialorigin o SET candidate_id = (o.details->>'candidate')::bigint "
    "WHERE jsonb_typeof(o.details->'candidate') = 'number' "
    "AND EXISTS (SELECT 1 FROM discovery_candidate t WHERE t.id = (o.details->>'candidate')::bigint)",
    "UPDATE catalog_materialorigin o SET dft_job_id = (o.details->>'dft_job')::bigint "
    "WHERE jsonb_typeof(o.details->'dft_job') = 'number' "
    "AND EXISTS (SELECT 1 FROM discovery_dftjob t WHERE t.id = (o.details->>'dft_job')::bigint)",
]


class Migration(migrations.Migration):

    dependencies = [("catalog", "0005_origin_provenance_columns")]

    operations = [migrations.RunSQL(COPY_FROM_DETAILS, reverse_sql=migrations.RunSQL.noop)]
