"""Real sentences in every supported language, written for the detector tests.

Two texts per language: a sales snapshot (the kind of output Keel agents produce) and an
everyday story. The close pairs (da/no/sv, cs/sk) say the same thing, so the detector has
to separate them on the language, not the topic.
"""

from __future__ import annotations

SNAPSHOTS = {
    "en": (
        "Northwind Construction is planning a new logistics centre outside Gothenburg, and the "
        "project value is estimated at 48 million euros. The company has worked with us on two "
        "smaller sites before, and their procurement team was very happy with the delivery times. "
        "This time they are looking for a partner who can handle both the steel frame and the roof "
        "installation, which is where our offer is strongest. We should also point out that our "
        "crews have been certified for the new safety rules that come into force next spring. The "
        "decision is expected at the end of the month, so the timing matters. I suggest that we "
        "book a meeting with their project manager on Tuesday and bring the updated price list."
    ),
    "sv": (
        "Byggbolaget Nordvik planerar ett nytt logistikcenter utanför Göteborg, och projektets "
        "värde uppskattas till 48 miljoner euro. Företaget har arbetat med oss på två mindre "
        "anläggningar tidigare, och deras inköpsavdelning var mycket nöjd med leveranstiderna. Den "
        "här gången söker de en partner som kan ta hand om både stålstommen och takmonteringen, "
        "vilket är precis där vårt erbjudande är som starkast. Vi bör också nämna att våra "
        "arbetslag redan är certifierade enligt de nya säkerhetsreglerna som börjar gälla nästa "
        "vår. Beslutet väntas i slutet av månaden, så tidpunkten är viktig för oss. Jag föreslår "
        "att vi bokar ett möte med deras projektledare på tisdag och tar med den uppdaterade "
        "prislistan. Om de inte hinner träffas då kan vi erbjuda ett kort samtal på torsdag "
        "förmiddag i stället."
    ),
    "da": (
        "Byggefirmaet Nordvik planlægger et nyt logistikcenter uden for Aarhus, og projektets "
        "værdi anslås til 48 millioner euro. Virksomheden har arbejdet sammen med os på to mindre "
        "byggepladser før, og deres indkøbsafdeling var meget tilfreds med leveringstiderne. Denne "
        "gang søger de en partner, som kan tage sig af både stålkonstruktionen og tagmonteringen, "
        "og det er netop her, vores tilbud er stærkest. Vi bør også nævne, at vores hold allerede "
        "er certificeret efter de nye sikkerhedsregler, der træder i kraft næste forår. "
        "Beslutningen ventes i slutningen af måneden, så det er vigtigt, at vi ikke venter for "
        "længe. Jeg foreslår, at vi booker et møde med deres projektleder på tirsdag og tager den "
        "opdaterede prisliste med. Hvis det ikke passer dem, kan vi måske tilbyde et kort opkald "
        "torsdag formiddag i stedet."
    ),
    "no": (
        "Byggefirmaet Nordvik planlegger et nytt logistikksenter utenfor Bergen, og prosjektets "
        "verdi anslås til 48 millioner euro. Selskapet har jobbet sammen med oss på to mindre "
        "byggeplasser tidligere, og innkjøpsavdelingen deres var veldig fornøyd med "
        "leveringstidene. Denne gangen ser de etter en partner som kan ta seg av både "
        "stålkonstruksjonen og takmonteringen, og det er nettopp her tilbudet vårt er sterkest. Vi "
        "bør også nevne at mannskapene våre allerede er sertifisert etter de nye "
        "sikkerhetsreglene som trer i kraft neste vår. Beslutningen ventes i slutten av måneden, "
        "så det er viktig at vi ikke venter for lenge. Jeg foreslår at vi booker et møte med "
        "prosjektlederen deres på tirsdag og tar med den oppdaterte prislisten. Hvis det ikke "
        "passer for dem, kan vi kanskje tilby en kort samtale torsdag formiddag i stedet."
    ),
    "fi": (
        "Rakennusyhtiö Nordvik suunnittelee uutta logistiikkakeskusta Tampereen ulkopuolelle, ja "
        "hankkeen arvoksi arvioidaan 48 miljoonaa euroa. Yritys on tehnyt kanssamme yhteistyötä "
        "kahdella pienemmällä työmaalla aiemmin, ja heidän hankintaosastonsa oli erittäin "
        "tyytyväinen toimitusaikoihin. Tällä kertaa he etsivät kumppania, joka voi hoitaa sekä "
        "teräsrungon että kattoasennuksen, ja juuri siinä meidän tarjouksemme on vahvimmillaan. "
        "Meidän kannattaa myös mainita, että työryhmämme on jo sertifioitu uusien "
        "turvallisuusmääräysten mukaisesti, jotka tulevat voimaan ensi keväänä. Päätöstä "
        "odotetaan kuun lopussa, joten ajoitus on meille tärkeä. Ehdotan, että varaamme "
        "tapaamisen heidän projektipäällikkönsä kanssa tiistaina ja otamme mukaan päivitetyn "
        "hinnaston. Jos se ei sovi heille, voimme tarjota lyhyen puhelun torstaiaamuna, koska "
        "aikaa ei ole paljon ja kilpailijat ovat myös liikkeellä."
    ),
    "de": (
        "Das Bauunternehmen Nordvik plant ein neues Logistikzentrum außerhalb von Hamburg, und der "
        "Projektwert wird auf 48 Millionen Euro geschätzt. Die Firma hat bereits auf zwei "
        "kleineren Baustellen mit uns zusammengearbeitet, und ihre Einkaufsabteilung war mit den "
        "Lieferzeiten sehr zufrieden. Diesmal suchen sie einen Partner, der sowohl die "
        "Stahlkonstruktion als auch die Dachmontage übernehmen kann, und genau dort ist unser "
        "Angebot am stärksten. Wir sollten auch erwähnen, dass unsere Teams bereits nach den neuen "
        "Sicherheitsvorschriften zertifiziert sind, die im nächsten Frühjahr in Kraft treten. Die "
        "Entscheidung wird für Ende des Monats erwartet, deshalb ist der Zeitpunkt wichtig. Ich "
        "schlage vor, dass wir für Dienstag ein Treffen mit ihrem Projektleiter vereinbaren und "
        "die aktualisierte Preisliste mitbringen. Wenn das nicht passt, können wir ein kurzes "
        "Telefonat am Donnerstagvormittag anbieten."
    ),
    "fr": (
        "L'entreprise de construction Nordvik prévoit un nouveau centre logistique près de Lyon, "
        "et la valeur du projet est estimée à 48 millions d'euros. La société a déjà travaillé "
        "avec nous sur deux chantiers plus petits, et son service des achats était très satisfait "
        "des délais de livraison. Cette fois, elle cherche un partenaire capable de prendre en "
        "charge à la fois la structure en acier et la pose de la toiture, et c'est précisément là "
        "que notre offre est la plus solide. Nous devrions aussi rappeler que nos équipes sont "
        "déjà certifiées selon les nouvelles règles de sécurité qui entreront en vigueur au "
        "printemps prochain. La décision est attendue à la fin du mois, donc le calendrier est "
        "important. Je propose que nous fixions un rendez-vous avec leur chef de projet mardi et "
        "que nous apportions la liste de prix mise à jour."
    ),
    "cs": (
        "Stavební firma Nordvik plánuje nové logistické centrum u Brna a hodnota projektu se "
        "odhaduje na 48 milionů eur. Společnost s námi už dříve spolupracovala na dvou menších "
        "stavbách a jejich nákupní oddělení bylo s dodacími lhůtami velmi spokojené. Tentokrát "
        "hledají partnera, který zvládne jak ocelovou konstrukci, tak montáž střechy, a právě v "
        "tom je naše nabídka nejsilnější. Měli bychom také zmínit, že naše týmy jsou už "
        "certifikované podle nových bezpečnostních předpisů, které začnou platit příští jaro. "
        "Rozhodnutí se očekává na konci měsíce, proto je načasování důležité. Navrhuji, abychom si "
        "domluvili schůzku s jejich projektovým manažerem v úterý a přinesli aktualizovaný ceník. "
        "Pokud jim to nebude vyhovovat, můžeme jim nabídnout krátký hovor ve čtvrtek dopoledne, "
        "protože času není mnoho."
    ),
    "sk": (
        "Stavebná firma Nordvik plánuje nové logistické centrum pri Bratislave a hodnota projektu "
        "sa odhaduje na 48 miliónov eur. Spoločnosť s nami už predtým spolupracovala na dvoch "
        "menších stavbách a ich nákupné oddelenie bolo s dodacími lehotami veľmi spokojné. "
        "Tentoraz hľadajú partnera, ktorý zvládne oceľovú konštrukciu aj montáž strechy, a práve "
        "v tom je naša ponuka najsilnejšia. Mali by sme tiež spomenúť, že naše tímy sú už "
        "certifikované podľa nových bezpečnostných predpisov, ktoré začnú platiť budúcu jar. "
        "Rozhodnutie sa očakáva na konci mesiaca, preto je načasovanie dôležité. Navrhujem, aby "
        "sme si dohodli stretnutie s ich projektovým manažérom v utorok a priniesli aktualizovaný "
        "cenník. Ak im to nebude vyhovovať, môžeme im ponúknuť krátky hovor vo štvrtok doobeda, "
        "pretože času nie je veľa."
    ),
}

STORIES = {
    "en": (
        "Last weekend we took the train to the coast because the weather forecast promised "
        "sunshine for the first time in weeks. The carriage was full of families with children, "
        "and most of them seemed to have the same idea as we did. When we arrived, the wind was "
        "stronger than expected, but the sky was clear and the sea was a deep shade of blue. We "
        "walked along the beach for a couple of hours, stopped at a small café for coffee and "
        "cinnamon buns, and talked about where we would like to travel next summer. In the "
        "evening we were tired but happy, and everyone agreed that we should do it again soon."
    ),
    "sv": (
        "Förra helgen tog vi tåget till kusten eftersom väderprognosen lovade sol för första "
        "gången på flera veckor. Vagnen var full av barnfamiljer, och de flesta verkade ha fått "
        "samma idé som vi. När vi kom fram blåste det mer än vi hade räknat med, men himlen var "
        "klar och havet var djupt blått. Vi promenerade längs stranden i ett par timmar, stannade "
        "på ett litet kafé för att dricka kaffe och äta kanelbullar, och pratade om vart vi "
        "skulle vilja resa nästa sommar. På kvällen var vi trötta men glada, och alla tyckte att "
        "vi borde göra om det snart igen. Barnen somnade redan på tåget hem."
    ),
    "da": (
        "Sidste weekend tog vi toget ud til kysten, fordi vejrudsigten lovede solskin for første "
        "gang i flere uger. Vognen var fuld af børnefamilier, og de fleste havde vist fået den "
        "samme idé som os. Da vi kom frem, blæste det mere, end vi havde regnet med, men himlen "
        "var klar, og havet var dybt blåt. Vi gik en tur langs stranden i et par timer, stoppede "
        "ved en lille café for at drikke kaffe og spise kanelsnegle, og snakkede om, hvor vi "
        "gerne ville rejse hen næste sommer. Om aftenen var vi trætte, men glade, og alle var "
        "enige om, at vi snart skulle gøre det igen. Børnene faldt i søvn allerede i toget på vej "
        "hjem."
    ),
    "no": (
        "Forrige helg tok vi toget ut til kysten, fordi værmeldingen lovet sol for første gang på "
        "flere uker. Vognen var full av barnefamilier, og de fleste hadde visst fått den samme "
        "ideen som oss. Da vi kom fram, blåste det mer enn vi hadde regnet med, men himmelen var "
        "klar, og havet var dypt blått. Vi gikk en tur langs stranden i et par timer, stoppet ved "
        "en liten kafé for å drikke kaffe og spise kanelboller, og snakket om hvor vi gjerne "
        "ville reise neste sommer. Om kvelden var vi slitne, men glade, og alle var enige om at "
        "vi snart burde gjøre det igjen. Barna sovnet allerede på toget på vei hjem."
    ),
    "fi": (
        "Viime viikonloppuna menimme junalla rannikolle, koska sääennuste lupasi aurinkoa "
        "ensimmäistä kertaa moneen viikkoon. Vaunu oli täynnä lapsiperheitä, ja useimmilla "
        "näytti olevan sama ajatus kuin meillä. Kun saavuimme perille, tuuli oli voimakkaampi "
        "kuin olimme odottaneet, mutta taivas oli kirkas ja meri syvän sininen. Kävelimme rantaa "
        "pitkin pari tuntia, pysähdyimme pieneen kahvilaan juomaan kahvia ja syömään "
        "korvapuusteja, ja puhuimme siitä, minne haluaisimme matkustaa ensi kesänä. Illalla "
        "olimme väsyneitä mutta iloisia, ja kaikki olivat sitä mieltä, että meidän pitäisi tehdä "
        "se pian uudestaan. Lapset nukahtivat jo junassa matkalla kotiin, ja me istuimme "
        "hiljaa ikkunan vieressä katsomassa, kuinka aurinko laski metsän taakse. Seuraavana "
        "aamuna kaikki halusivat heti tietää, milloin lähdemme taas uudelle retkelle."
    ),
    "de": (
        "Letztes Wochenende sind wir mit dem Zug an die Küste gefahren, weil der Wetterbericht "
        "zum ersten Mal seit Wochen Sonnenschein versprochen hatte. Der Wagen war voller Familien "
        "mit Kindern, und die meisten hatten offenbar dieselbe Idee wie wir. Als wir ankamen, war "
        "der Wind stärker als erwartet, aber der Himmel war klar und das Meer tiefblau. Wir sind "
        "ein paar Stunden am Strand entlang spaziert, haben in einem kleinen Café Kaffee "
        "getrunken und Zimtschnecken gegessen und darüber gesprochen, wohin wir nächsten Sommer "
        "reisen möchten. Am Abend waren wir müde, aber glücklich, und alle waren sich einig, dass "
        "wir das bald wiederholen sollten. Die Kinder sind schon im Zug nach Hause eingeschlafen."
    ),
    "fr": (
        "Le week-end dernier, nous avons pris le train jusqu'à la côte, parce que la météo "
        "annonçait du soleil pour la première fois depuis des semaines. Le wagon était rempli de "
        "familles avec des enfants, et la plupart semblaient avoir eu la même idée que nous. À "
        "notre arrivée, le vent était plus fort que prévu, mais le ciel était dégagé et la mer "
        "d'un bleu profond. Nous avons marché le long de la plage pendant quelques heures, nous "
        "nous sommes arrêtés dans un petit café pour boire un café et manger des roulés à la "
        "cannelle, et nous avons parlé de l'endroit où nous aimerions voyager l'été prochain. Le "
        "soir, nous étions fatigués mais heureux, et tout le monde était d'accord pour "
        "recommencer bientôt."
    ),
    "cs": (
        "Minulý víkend jsme jeli vlakem k moři, protože předpověď počasí poprvé po několika "
        "týdnech slibovala slunce. Vagon byl plný rodin s dětmi a většina z nich zřejmě dostala "
        "stejný nápad jako my. Když jsme dorazili, foukal silnější vítr, než jsme čekali, ale "
        "obloha byla jasná a moře mělo sytě modrou barvu. Několik hodin jsme se procházeli po "
        "pláži, zastavili jsme se v malé kavárně na kávu a skořicové šneky a povídali jsme si o "
        "tom, kam bychom chtěli příští léto cestovat. Večer jsme byli unavení, ale šťastní, a "
        "všichni se shodli, že bychom to měli brzy zopakovat. Děti usnuly už ve vlaku cestou "
        "domů a my jsme se dívali z okna, jak slunce zapadá za les."
    ),
    "sk": (
        "Minulý víkend sme išli vlakom k moru, pretože predpoveď počasia po prvýkrát po "
        "niekoľkých týždňoch sľubovala slnko. Vagón bol plný rodín s deťmi a väčšina z nich "
        "zrejme dostala rovnaký nápad ako my. Keď sme dorazili, fúkal silnejší vietor, než sme "
        "čakali, ale obloha bola jasná a more malo sýtomodrú farbu. Niekoľko hodín sme sa "
        "prechádzali po pláži, zastavili sme sa v malej kaviarni na kávu a škoricové slimáky a "
        "rozprávali sme sa o tom, kam by sme chceli budúce leto cestovať. Večer sme boli "
        "unavení, ale šťastní, a všetci sa zhodli, že by sme to mali čoskoro zopakovať. Deti "
        "zaspali už vo vlaku cestou domov a my sme sa pozerali z okna, ako slnko zapadá za les."
    ),
}
