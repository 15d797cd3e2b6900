"""Provenance as columns: MaterialOrigin → campaign, candidate, DFT job (filled by 0006 from the ids ``details`` held)."""

import django.db.models.deletion
from django.db import migrations, models



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
    ]
