"""Provenance as columns: MaterialOrigin → campaign, candidate, DFT job (filled from the ids that ``details`` held)."""

import django.db.models.deletion
from django.db import migrations, models

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

    dependencies = [
        ('catalog', '0004_material_verdict'),
        ('discovery', '0008_dft_job_provenance_columns'),
    ]

    operations = [
        migrations.AddField(
            model_name='materialorigin',
            name='campaign',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='material_origins', to='discovery.campaign'),
        ),
        migrations.AddField(
            model_name='materialorigin',
            name='candidate',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='material_origins', to='discovery.candidate'),
        ),
        migrations.AddField(
            model_name='materialorigin',
            name='dft_job',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='material_origins', to='discovery.dftjob'),
        ),
        migrations.AlterField(
            model_name='materialorigin',
            name='details',
            field=models.JSONField(blank=True, default=dict, help_text='round, parent, file names, notes'),
        ),
        migrations.RunSQL(COPY_FROM_DETAILS, reverse_sql=migrations.RunSQL.noop),
    ]
